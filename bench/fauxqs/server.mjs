// fauxqs on loopback for the benchmarks. Prints {"port": N} once it listens, then serves commands, one JSON
// object a line on stdin, answering each with one JSON line on stdout:
//   {"op": "fill", "queue_url": URL, "count": N, "keys": K, "body_bytes": B}
// enqueues N messages through fauxqs's own SendMessageBatch action (its validations and MD5s), without the
// HTTP round trips, so preloading costs the benchmark nothing. K > 0 gives message i the String attribute
// partition_key = "key-(i mod K)". Exits when stdin closes, or on SIGTERM.
//
// startFauxqs() of fauxqs 1.9.2 listens on 0.0.0.0 whatever `host` says, so the app is built and bound here.
// Usage: node server.mjs [port]   (port 0 or none: a free port)
import { createInterface } from "node:readline";
import { buildApp } from "fauxqs";

const dist = new URL("./node_modules/fauxqs/dist/", import.meta.url);
const { SqsStore } = await import(new URL("sqs/sqsStore.js", dist));
const { sendMessageBatch } = await import(new URL("sqs/actions/sendMessageBatch.js", dist));

const sqsStore = new SqsStore();
const app = buildApp({ logger: false, stores: { sqsStore } });
await app.listen({ port: Number.parseInt(process.argv[2] ?? "0", 10), host: "127.0.0.1" });
reply({ port: app.server.address().port });

function reply(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function entry(index, keys, padding) {
  const message = { Id: String(index % 10), MessageBody: JSON.stringify({ n: index, pad: padding }) };
  if (keys > 0) {
    message.MessageAttributes = { partition_key: { DataType: "String", StringValue: `key-${index % keys}` } };
  }
  return message;
}

function fill({ queue_url: queueUrl, count, keys = 0, body_bytes: bodyBytes = 100 }) {
  const padding = "x".repeat(Math.max(0, bodyBytes - 20));
  for (let start = 0; start < count; start += 10) {
    const entries = [];
    for (let i = start; i < Math.min(start + 10, count); i += 1) entries.push(entry(i, keys, padding));
    const result = sendMessageBatch({ QueueUrl: queueUrl, Entries: entries }, sqsStore);
    if (result.Failed.length > 0) throw new Error(JSON.stringify(result.Failed[0]));
  }
  return { filled: count };
}

async function stop() {
  await app.close();
  process.exit(0);
}

const commands = { fill };
createInterface({ input: process.stdin })
  .on("line", (line) => {
    try {
      const command = JSON.parse(line);
      reply({ ok: true, ...commands[command.op](command) });
    } catch (error) {
      reply({ ok: false, error: String(error) });
    }
  })
  .on("close", stop);
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
