"""The runtime: the Server, the Publisher and the admin API in one event loop; the one owner of signals and drain.

Lifecycle: bind the admin socket, start the pipeline and the publisher, serve the admin API. A drain (from
POST /drain or the first SIGTERM/SIGINT) makes readiness fail at once, then shuts the Server down with
`drain_timeout_s` (stop receiving, hand back un-started messages, finish or cancel running ones, flush
deletions) together with the Publisher. After a drain started by /drain the process keeps serving the
probes until SIGTERM (or exits at once with `exit_after_drain`). The receive calls still in flight then get
until their long poll ends to hand back what they bring (not on the embedded local server, whose queues end
with the process). The Runtime owns SIGTERM and SIGINT from start to exit: a second signal, in any phase,
cancels the running handlers and receive calls, so their messages are handed back and the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING, Any, TextIO

import uvicorn

from service.aio.budget import Budget
from service.app.admin import create_app
from service.app.config import Settings
from service.app.consumers import Consumer, QueueSpec
from service.app.listener import bind_admin, serve_admin, warn_if_open
from service.consumer.batching import AnyHandler, BatchHandler
from service.consumer.handler import Handler, as_handler
from service.consumer.router import Router, wrap_handlers
from service.consumer.server import RECEIVE_ANSWER_MARGIN_S, Server
from service.errors import ConfigError
from service.idempotency import Idempotent, Store, idempotent, store_from_url
from service.idempotency.stores import redacted
from service.payloads.payloads import S3Payloads
from service.publishing.publisher import Publisher
from service.sqs.local import QUEUE_NAME
from service.sqs.urls import queue_name
from service.telemetry.hooks import Hooks, HooksFactory

if TYPE_CHECKING:
    pass

_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_log = logging.getLogger("service.runtime")


class Runtime:
    """Runs a Server per queue (one, or the queue table's), one Publisher and the admin API until drained and told
    to stop. `server` and `operations` are the first queue's: the routes of a one-queue service act on them."""

    def __init__(
        self,
        settings: Settings,
        handler: AnyHandler,
        *,
        queue_url: str | None = None,
        queues: Sequence[QueueSpec] = (),
        max_in_flight: int | None = None,
        hooks: Hooks | HooksFactory | None = None,
        handle_signals: bool = True,
        out: TextIO | None = None,
        notes: Sequence[str] = (),
        ephemeral_queue: bool = False,
    ) -> None:
        self.settings = settings
        url = queue_url or settings.queue_url
        specs = list(queues) or [QueueSpec(queue_name(url) if url else QUEUE_NAME, url, settings, handler)]
        self.queue_url = specs[0].url
        self.publish_queue_url = settings.publish_queue_url or self.queue_url
        self.hooks = self._hooks_for(hooks, self.queue_url)
        self.payloads = _payloads(settings, self.hooks)
        self.budget = None if max_in_flight is None else Budget(max_in_flight)
        self._store = self._idempotency_store()
        self.consumers: dict[str, Consumer] = {}
        for index, spec in enumerate(specs):
            self.consumers[spec.name] = Consumer(
                spec,
                publish_queue_url=self.publish_queue_url,
                hooks=self.hooks if index == 0 else self._hooks_for(hooks, spec.url),
                operator_hooks=self.hooks,
                payloads=self.payloads,
                budget=self.budget,
                guard=None if self._store is None else partial(self._guarded, namespace=spec.name),
                draining=lambda: self.draining,
            )
        first = next(iter(self.consumers.values()))
        self.server = first.server
        self.operations = first.operations
        self.publisher = self._publisher(self.publish_queue_url)
        self.publishers: dict[str, Publisher] = {}
        if len(self.consumers) > 1:  # POST /queues/{name}/publish: the publish queue's Publisher where it is one
            for name, consumer in self.consumers.items():
                url = consumer.server.queue_url
                self.publishers[name] = self.publisher if url == self.publish_queue_url else self._publisher(url)
        self.admin_url = ""
        self.crashed = False
        self._handle_signals = handle_signals
        self._out = out or sys.stdout
        self._notes = list(notes)
        self._signals = 0
        self._started = False
        # The queue ends with this process (the embedded local server): receive calls are not waited for at exit.
        self._ephemeral_queue = ephemeral_queue
        self._drain_task: asyncio.Task[dict[str, Any]] | None = None
        self._stop = asyncio.Event()
        self._components = AsyncExitStack()

    def _hooks_for(self, hooks: Hooks | HooksFactory | None, queue_url: str) -> Hooks:
        """The hooks for a queue: a factory is asked once per queue (each queue's metrics carry its name)."""
        if hooks is None or isinstance(hooks, Hooks):
            return hooks or Hooks()
        return hooks(queue_url, self.publish_queue_url)

    @property
    def servers(self) -> list[Server]:
        """Every queue's Server, in the table's order."""
        return [consumer.server for consumer in self.consumers.values()]

    def _idempotency_store(self) -> Store | None:
        """The idempotency store (MQ_IDEMPOTENCY_STORE), shared by every queue's guard; None without one."""
        settings = self.settings
        if not settings.idempotency_store:
            return None
        try:
            return store_from_url(settings.idempotency_store)
        except ConfigError as error:  # the redis package is missing: say which variable asked for it
            raise ConfigError("MQ_IDEMPOTENCY_STORE", redacted(settings.idempotency_store), error.allowed) from error

    def _guarded(self, handler: AnyHandler, *, namespace: str) -> tuple[AnyHandler, Idempotent]:
        """`handler` under an idempotency guard, and the guard: one per queue for every route, batch routes included."""
        if isinstance(handler, BatchHandler):
            guard = self._guard(Router(fallback=handler), namespace)
            return guard.guarding_batches(handler), guard
        if isinstance(handler, Router) and handler.batching:
            guard = self._guard(handler, namespace)
            return wrap_handlers(handler, guard.guarding, guard.guarding_batches), guard
        guard = self._guard(as_handler(handler), namespace)
        return guard, guard

    def _guard(self, handler: Handler, namespace: str) -> Idempotent:
        """The idempotency guard around a queue's handler (MQ_IDEMPOTENCY_*); keys are prefixed with its name."""
        settings = self.settings
        assert self._store is not None
        return idempotent(
            handler,
            self._store,
            key=settings.idempotency_key,
            expires_s=settings.idempotency_expires_s,
            namespace=namespace,
            observer=self.hooks.idempotency_observer,
        )

    def _publisher(self, queue_url: str) -> Publisher:
        """A Publisher behind /publish (or /queues/{name}/publish)."""
        return Publisher(
            queue_url,
            publish_interval_s=self.settings.publish_interval_s,
            sqs_client=self.settings.sqs_client,
            observer=self.hooks.publish_observer,
            instrument_client=self.hooks.instrument_client,
            offload=None if self.payloads is None else self.payloads.offloader,
        )

    @property
    def draining(self) -> bool:
        """True from the moment a drain was asked for: readiness fails from then on."""
        return self._drain_task is not None

    async def drain(self) -> dict[str, Any]:
        """Drain once; concurrent and later calls wait for the same drain and get the same summary."""
        if self._drain_task is None:
            self._drain_task = asyncio.create_task(self._drain(), name="mq-service drain")
        return await asyncio.shield(self._drain_task)

    def stop(self) -> None:
        """Drain (if not yet done) and exit, as SIGTERM does."""
        self._on_signal(signal.SIGTERM)

    async def run(self) -> int:
        """Run until drained and stopped; returns the exit code (1 if the pipeline crashed)."""
        sock = bind_admin(self.settings.admin_host, self.settings.admin_port)
        # Signals are ours from the first moment to the last: a Ctrl-C in any phase drains or cuts it short,
        # never a KeyboardInterrupt raised wherever the event loop happens to be.
        with self._signals_installed():
            try:
                await self.start()
                self._started = True
                async with asyncio.TaskGroup() as tasks:
                    admin = await self._start_admin(tasks, sock)
                    watcher = tasks.create_task(self._watch_pipeline(), name="mq-service pipeline watch")
                    self._announce()
                    await self._stop.wait()
                    await self.drain()
                    watcher.cancel()
                    admin.should_exit = True
            finally:
                sock.close()
                await self.drain()  # a no-op after a drain; otherwise (start-up failed) stops what was started
                await self._server_stopped()
        _log.info("stopped", extra={"crashed": self.crashed})
        return 1 if self.crashed else 0

    async def start(self) -> None:
        """Start the large payloads' store (if configured), each queue's operations and Server, and the Publisher."""
        if self.payloads is not None:  # closed after the Server's last deletions and the Publisher's last send
            await self._components.enter_async_context(self.payloads)
        if self._store is not None:  # closed once the Servers stopped handling
            self._components.push_async_callback(self._store.close)
        for consumer in self.consumers.values():
            await consumer.operations.start()
        for server in self.servers:
            await server.start()
        await self.publisher.start()
        for publisher in self._other_publishers():
            await publisher.start()

    async def _start_admin(self, tasks: asyncio.TaskGroup, sock: socket.socket) -> uvicorn.Server:
        app = create_app(self, metrics=self.hooks.metrics)
        admin = await serve_admin(app if self.hooks.wrap_asgi is None else self.hooks.wrap_asgi(app), tasks, sock)
        host, port = sock.getsockname()[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.admin_url = f"http://{shown}:{port}"
        _log.info("admin API listening", extra={"admin_url": self.admin_url, "host": host, "port": port})
        warn_if_open(host, token_set=self.settings.admin_token is not None)
        return admin

    def _announce(self) -> None:
        settings = self.settings
        lines = [
            "mq-service is running",
            f"  admin API:      {self.admin_url}  (/healthz /readyz /status /publish /drain /metrics /openapi.json)",
            f"  console:        {self.admin_url}/console",
            *self._queue_lines(),
            *self._notes,
            "  publish a message:",
            f"    {publish_command(self.admin_url, token=settings.admin_token is not None)}",
        ]
        print("\n".join(lines), file=self._out, flush=True)
        # The queue URLs in use: in embedded mode the settings have none.
        shown = {**settings.summary(), "queue_url": self.queue_url, "publish_queue_url": self.publish_queue_url}
        _log.info("running", extra={"admin_url": self.admin_url, "settings": shown})

    def _queue_lines(self) -> list[str]:
        """The banner's lines on the queues: as ever for one queue, a line per queue for several."""
        if len(self.consumers) == 1:
            return [
                f"  queue:          {self.queue_url}",
                f"  publish queue:  {self.publish_queue_url}",
                f"  handler:        {self.settings.handler}",
            ]
        lines = [
            f"  queue {c.name}: {c.server.queue_url}  (handler {c.settings.handler})" for c in self.consumers.values()
        ]
        budget = [] if self.budget is None else [f"  max in flight:  {self.budget.total} (shared by weight)"]
        return [*lines, f"  publish queue:  {self.publish_queue_url}", *budget]

    async def _drain(self) -> dict[str, Any]:
        timeout_s = self.settings.drain_timeout_s
        in_flight = sum(server.in_flight for server in self.servers)
        _log.info(
            "drain started: receiving stops; the %d messages in flight get up to %g s to finish "
            "(MQ_DRAIN_TIMEOUT_S), then are handed back",
            in_flight,
            timeout_s,
            extra={"in_flight": in_flight, "drain_timeout_s": timeout_s},
        )
        try:
            drained, *_ = await asyncio.gather(
                asyncio.gather(*(self._drain_server(server, timeout_s) for server in self.servers)),
                self._shutdown_publisher(timeout_s),
                *(consumer.operations.shutdown() for consumer in self.consumers.values()),
            )
        finally:
            await self._components.aclose()
        summary: dict[str, Any] = {"server": drained[0], "publisher": self.publisher.stats()}
        if len(self.consumers) > 1:
            summary["queues"] = dict(zip(self.consumers, drained, strict=True))
        _log.info("drained", extra=summary)
        if self.settings.exit_after_drain or self._signals:
            self._stop.set()
        elif self.admin_url:
            _log.info("drained: waiting for SIGTERM")
        return summary

    async def _drain_server(self, server: Server, timeout_s: float) -> dict[str, Any]:
        try:
            return (await server.drain(timeout_s)).as_dict()
        except BaseException as exc:  # the pipeline had crashed: shutdown re-raises why
            if isinstance(exc, asyncio.CancelledError):
                raise
            health = server.health
            counts = {name: getattr(health, name) for name in ("handled", "failed", "deleted", "released")}
            return {**counts, "crashed": repr(exc)}

    def _other_publishers(self) -> list[Publisher]:
        return [publisher for publisher in self.publishers.values() if publisher is not self.publisher]

    async def _shutdown_publisher(self, timeout_s: float) -> None:
        await asyncio.gather(*(_shutdown(p, timeout_s) for p in [self.publisher, *self._other_publishers()]))

    async def _server_stopped(self) -> None:
        """Wait for the receive calls still in flight after a drain (a second signal cuts this short)."""
        alive = [server for server in self.servers if server.alive]
        if alive and self._ephemeral_queue:
            # The embedded server's queues end with this process: nothing a receive brings could be kept.
            _log.info("not waiting for the receive calls in flight: the embedded local SQS server stops too")
            for server in alive:
                server.hurry()
        elif alive:
            wait_s = max(server.settings.wait_time_seconds for server in alive)
            longest_s = wait_s + RECEIVE_ANSWER_MARGIN_S
            polling = sum(server.polling for server in alive)
            _log.info(
                "waiting up to %g s for %d receive calls in flight (long polls of MQ_WAIT_TIME_SECONDS=%d s) to "
                "return and hand back what they bring; send the signal again to stop now",
                longest_s,
                polling,
                wait_s,
                extra={"polling": polling, "at_most_s": longest_s},
            )
        for server in self.servers:
            try:
                await server.wait()
            except asyncio.CancelledError:
                raise
            except BaseException:
                pass

    async def _watch_pipeline(self) -> None:
        await asyncio.gather(*(self._watch_server(server) for server in self.servers))

    async def _watch_server(self, server: Server) -> None:
        try:
            await server.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.crashed = True
            _log.error("the message pipeline of %s crashed; /healthz reports it", server.queue_url, exc_info=exc)

    @contextlib.contextmanager
    def _signals_installed(self) -> Iterator[None]:
        if not self._handle_signals:
            yield
            return
        loop = asyncio.get_running_loop()
        for signum in _SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)
        try:
            yield
        finally:
            for signum in _SIGNALS:
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            _log.info("%s: draining, then exiting (send it again to stop at once)", name)
            if not self._started:  # starting: the drain begins once everything runs
                self._stop.set()
            elif self._drain_task is None:
                self._drain_task = asyncio.create_task(self._drain(), name="mq-service drain")
            elif self._drain_task.done():
                self._stop.set()
        elif self._signals == 2:
            _log.warning(
                "%s again: cancelling running handlers and receive calls; their messages go back to the queue", name
            )
            for server in self.servers:
                server.hurry()
        else:
            _log.info("%s: already stopping as fast as it can", name)


async def _shutdown(publisher: Publisher, timeout_s: float) -> None:
    try:
        await publisher.shutdown(timeout_s)
    except Exception:  # its batch loop had crashed: shutdown re-raises why
        _log.exception("the publisher of %s had stopped on an error", publisher.queue_url)


def publish_command(admin_url: str, *, token: bool) -> str:
    """A curl command that publishes a message to the example handler's `hello` route."""
    auth = ' -H "Authorization: Bearer $MQ_ADMIN_TOKEN"' if token else ""
    body = """'{"route": "hello", "body": "hi"}'"""
    return f"curl -sS -X POST {admin_url}/publish -H 'Content-Type: application/json'{auth} -d {body}"


def _payloads(settings: Settings, hooks: Hooks) -> S3Payloads | None:
    """Large payloads through S3, when MQ_S3_BUCKET is set."""
    if not settings.s3_bucket:
        return None
    return S3Payloads(
        settings.s3_bucket,
        prefix=settings.s3_prefix,
        threshold_bytes=settings.s3_threshold_bytes,
        delete_payloads=settings.s3_delete_payloads,
        legacy_attribute=settings.s3_legacy_attribute,
        max_body_bytes=settings.s3_max_body_bytes,
        instrument_client=hooks.instrument_s3_client,
        observer=hooks.payload_observer,
    )
