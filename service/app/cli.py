"""The `mq-service` command: `mq-service run` reads the configuration once, then runs the service."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TextIO, cast

from service.app.config import ENV_VARIABLES, Settings, flag_for, load_handler, setting_help
from service.app.consumers import QueueSpec
from service.app.listener import bind_admin
from service.app.logs import setup_logging
from service.app.queues import CONFIG_VARIABLE, QueueTable, read_table
from service.app.runtime import Runtime
from service.consumer.batching import AnyHandler
from service.errors import ConfigError
from service.sqs.local import BUCKET_NAME, LocalSQS
from service.telemetry import Telemetry, TraceContextLogFilter
from service.telemetry.hooks import Hooks, HooksFactory

EXIT_CONFIG_ERROR = 2

_log = logging.getLogger("service.cli")


def parser() -> argparse.ArgumentParser:
    """`mq-service run [--queue-url URL] [--concurrency N] ...`: every flag mirrors an MQ_* variable."""
    return _parsers()[0]


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The main parser and its `run` subcommand's."""
    main_parser = argparse.ArgumentParser(
        prog="mq-service", description="A Kubernetes-native SQS consumer with an admin API."
    )
    commands = main_parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run",
        help="run the service",
        description="Run the service. Each flag has an MQ_* environment variable of the same name "
        "(--queue-url: MQ_QUEUE_URL); a flag wins over its variable. "
        "With no queue URL, an embedded local SQS server is started.",
    )
    run.add_argument(
        "--config",
        dest="config",
        metavar="FILE",
        help=f"a TOML file: the service's settings and a [[queues]] table per queue (docs/service.md); "
        f"variable {CONFIG_VARIABLE}",
    )
    for name, variable in ENV_VARIABLES.items():
        text = f"{setting_help(name)}; variable {variable}"
        run.add_argument(flag_for(variable), dest=variable, metavar="VALUE", help=text.replace("%", "%%"))
    commands.add_parser(
        "drain",
        help="drain the service running in this container or machine",
        description="POST /drain to the admin API on 127.0.0.1:$MQ_ADMIN_PORT with the token in $MQ_ADMIN_TOKEN, "
        "and wait up to $MQ_DRAIN_TIMEOUT_S + 5 s for its answer (Kubernetes' preStop hook runs this).",
    )
    return main_parser, run


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments; an unknown flag after `run` is reported with `run`'s usage (argparse gives the main one)."""
    main_parser, run = _parsers()
    args, unknown = main_parser.parse_known_args(argv)
    if unknown:
        (run if args.command == "run" else main_parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    hooks: Hooks | HooksFactory | None = None,
) -> int:
    """Entry point of the console script; returns the exit code (2 for a configuration error)."""
    args = _parse(argv)
    if args.command == "drain":
        return drain_local(os.environ if environ is None else environ)
    overrides = {name: value for name, value in vars(args).items() if name.startswith("MQ_") and value is not None}
    environ = os.environ if environ is None else environ
    try:
        table = read_table(environ, overrides, args.config or "")
        settings = table.settings
        handlers = {
            queue.name: load_handler(queue.settings.handler, variable=_handler_source(table, queue.name))
            for queue in table.queues
        }
        loop_factory = event_loop_factory(settings.event_loop)
    except ConfigError as exc:
        return _config_error(exc)
    telemetry = Telemetry.from_env(environ, export=settings.tracing_export)
    setup_logging(level=settings.log_level, log_format=settings.log_format, filters=[TraceContextLogFilter()])
    telemetry.install()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            if table.path:
                return runner.run(serve_table(table, handlers, hooks=hooks or telemetry.hooks))
            return runner.run(serve(settings, handlers[table.queues[0].name], hooks=hooks or telemetry.hooks))
    except ConfigError as exc:
        return _config_error(exc)
    except KeyboardInterrupt:  # Ctrl-C before the Runtime took the signals, or after it let them go
        _log.info("interrupted")
        return 0
    except Exception:
        _log.exception("mq-service stopped on an error")
        return 1
    finally:
        telemetry.shutdown()


def _handler_source(table: QueueTable, name: str) -> str:
    """Where a queue's handler was configured, for the error that refuses it."""
    return f"{table.path}: [[queues]] {name}: handler" if table.path else ENV_VARIABLES["handler"]


def drain_local(environ: Mapping[str, str]) -> int:
    """POST /drain to the local admin API, as the preStop hook does; 0 once it answered 200, else 1."""
    port = environ.get("MQ_ADMIN_PORT", "8080")
    headers = {"Content-Type": "application/json"}
    if environ.get("MQ_ADMIN_TOKEN"):
        headers["Authorization"] = f"Bearer {environ['MQ_ADMIN_TOKEN']}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/drain", data=b"", headers=headers, method="POST")
    timeout_s = float(environ.get("MQ_DRAIN_TIMEOUT_S") or 25) + 5
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            print(response.read().decode(), file=sys.stdout)
    except (OSError, ValueError) as exc:  # HTTPError, URLError and timeouts are OSErrors
        print(f"mq-service drain: {exc}", file=sys.stderr)
        return 1
    return 0


def event_loop_factory(
    choice: str, *, variable: str = "MQ_EVENT_LOOP"
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory for "uvloop", and for "auto" when uvloop is installed; None (asyncio's) otherwise."""
    if choice == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional: only imported when chosen
    except ImportError as exc:
        if choice == "uvloop":
            raise ConfigError(variable, choice, "auto or asyncio: uvloop is not installed") from exc
        return None
    return cast("Callable[[], asyncio.AbstractEventLoop]", uvloop.new_event_loop)


def _config_error(error: ConfigError) -> int:
    print(f"mq-service: configuration error: {error}", file=sys.stderr)
    return EXIT_CONFIG_ERROR


async def serve(
    settings: Settings,
    handler: AnyHandler,
    *,
    hooks: Hooks | HooksFactory | None = None,
    handle_signals: bool = True,
    out: TextIO | None = None,
) -> int:
    """Run the service; with no queue URL configured, on an embedded local SQS server. Returns the exit code."""
    if settings.embedded:
        # Refuse a taken admin address before the embedded SQS server starts (a thread and a port for nothing).
        bind_admin(settings.admin_host, settings.admin_port).close()
    local = LocalSQS(bucket=settings.s3_bucket or BUCKET_NAME) if settings.embedded else None
    try:
        if local is not None:
            await local.start()
        runtime = Runtime(
            # Embedded: large payloads on, in the local server's bucket.
            settings if local is None else replace(settings, s3_bucket=local.bucket),
            handler,
            queue_url=None if local is None else local.queue_url,
            hooks=hooks,
            handle_signals=handle_signals,
            out=out,
            notes=() if local is None else local.describe(),
            ephemeral_queue=local is not None,
        )
        return await runtime.run()
    finally:
        if local is not None:
            await asyncio.to_thread(local.stop)


async def serve_table(
    table: QueueTable,
    handlers: Mapping[str, AnyHandler],
    *,
    hooks: Hooks | HooksFactory | None = None,
    handle_signals: bool = True,
    out: TextIO | None = None,
) -> int:
    """Run the service on the queue table's queues, each with its handler; with no queue URL, on an embedded local
    SQS server with the table's queues (each with a dead-letter queue). Returns the exit code."""
    settings = table.settings
    if table.embedded:
        bind_admin(settings.admin_host, settings.admin_port).close()
    local = LocalSQS(bucket=settings.s3_bucket or BUCKET_NAME, queue_names=table.names) if table.embedded else None
    try:
        if local is not None:
            await local.start()
            settings = replace(settings, s3_bucket=local.bucket)
        specs = [
            QueueSpec(
                queue.name,
                queue.url or (local.queue_urls[queue.name] if local is not None else ""),
                queue.settings if local is None else replace(queue.settings, s3_bucket=local.bucket),
                handlers[queue.name],
                queue.weight,
            )
            for queue in table.queues
        ]
        runtime = Runtime(
            settings,
            specs[0].handler,
            queues=specs,
            max_in_flight=table.max_in_flight,
            ephemeral_queue=local is not None,
            hooks=hooks,
            handle_signals=handle_signals,
            out=out,
            notes=() if local is None else local.describe(),
        )
        return await runtime.run()
    finally:
        if local is not None:
            await asyncio.to_thread(local.stop)
