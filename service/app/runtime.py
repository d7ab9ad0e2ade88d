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
from typing import TYPE_CHECKING, Any, TextIO

import uvicorn

from service.app.admin import create_app
from service.app.config import Settings
from service.app.listener import bind_admin, serve_admin, warn_if_open
from service.app.operations import Operations
from service.consumer.batching import AnyHandler, BatchHandler
from service.consumer.handler import Handler, as_handler
from service.consumer.router import Router, wrap_handlers
from service.consumer.server import RECEIVE_ANSWER_MARGIN_S, Server
from service.errors import ConfigError
from service.idempotency import Idempotent, idempotent, store_from_url
from service.idempotency.stores import redacted
from service.payloads.payloads import S3Payloads
from service.publishing.publisher import Publisher
from service.telemetry.hooks import Hooks, HooksFactory

if TYPE_CHECKING:
    pass

_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_log = logging.getLogger("service.runtime")


class Runtime:
    """Runs one consumer (Server), one Publisher and the admin API until drained and told to stop."""

    def __init__(
        self,
        settings: Settings,
        handler: AnyHandler,
        *,
        queue_url: str | None = None,
        hooks: Hooks | HooksFactory | None = None,
        handle_signals: bool = True,
        out: TextIO | None = None,
        notes: Sequence[str] = (),
        ephemeral_queue: bool = False,
    ) -> None:
        self.settings = settings
        self.queue_url = queue_url or settings.queue_url
        self.publish_queue_url = settings.publish_queue_url or self.queue_url
        if hooks is None or isinstance(hooks, Hooks):
            self.hooks = hooks or Hooks()
        else:
            self.hooks = hooks(self.queue_url, self.publish_queue_url)
        self.operations = Operations(
            self.queue_url,
            self.publish_queue_url,
            on_action=self.hooks.operator_action,
            instrument_client=self.hooks.instrument_client,
        )
        self.payloads = _payloads(settings, self.hooks)
        self.idempotency: Idempotent | None = None
        self.server = self._server(handler)
        self.publisher = self._publisher()
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

    def _server(self, handler: AnyHandler) -> Server:
        """The consumer: the handler and the observer wrapped by telemetry, the operator's ring and S3 payloads."""
        hooks, payloads = self.hooks, self.payloads
        if hooks.wrap_handler is not None:
            handler = wrap_handlers(handler, hooks.wrap_handler)
        if self.settings.idempotency_store:  # inside the payload step: a body key hashes the body, not its pointer
            handler = self._guarded(handler)
        return Server(
            self.queue_url,
            handler if payloads is None else wrap_handlers(handler, payloads.wrap_handler, payloads.wrap_batch),
            self.settings.server_settings(),
            observer=[
                self.operations.errors,
                *([] if payloads is None else payloads.observers),
                *([] if hooks.observer is None else [hooks.observer]),
            ],
            middleware=hooks.server_middleware,
            batch_middleware=hooks.server_batch_middleware,
            instrument_client=hooks.instrument_client,
        )

    def _guarded(self, handler: AnyHandler) -> AnyHandler:
        """`handler` under the idempotency guard: one guard (its counters in /status) for every route, batch
        routes included."""
        if isinstance(handler, BatchHandler):
            guard = self.idempotency = self._guard(Router(fallback=handler))
            return guard.guarding_batches(handler)
        if isinstance(handler, Router) and handler.batching:
            guard = self.idempotency = self._guard(handler)
            return wrap_handlers(handler, guard.guarding, guard.guarding_batches)
        guard = self.idempotency = self._guard(as_handler(handler))
        return guard

    def _guard(self, handler: Handler) -> Idempotent:
        """The idempotency guard around the handler (MQ_IDEMPOTENCY_*); keys are prefixed with the queue's name."""
        settings = self.settings
        try:
            store = store_from_url(settings.idempotency_store)
        except ConfigError as error:  # the redis package is missing: say which variable asked for it
            raise ConfigError("MQ_IDEMPOTENCY_STORE", redacted(settings.idempotency_store), error.allowed) from error
        return idempotent(
            handler,
            store,
            key=settings.idempotency_key,
            expires_s=settings.idempotency_expires_s,
            namespace=self.queue_url.rstrip("/").rsplit("/", 1)[-1],
            observer=self.hooks.idempotency_observer,
        )

    def _publisher(self) -> Publisher:
        """The Publisher behind /publish."""
        return Publisher(
            self.publish_queue_url,
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
        """Start the large payloads' store (if configured), the operator's component, the Server and the Publisher."""
        if self.payloads is not None:  # closed after the Server's last deletions and the Publisher's last send
            await self._components.enter_async_context(self.payloads)
        if self.idempotency is not None:  # closed once the Server stopped handling
            self._components.push_async_callback(self.idempotency.store.close)
        await self.operations.start()
        await self.server.start()
        await self.publisher.start()

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
            f"  queue:          {self.queue_url}",
            f"  publish queue:  {self.publish_queue_url}",
            f"  handler:        {settings.handler}",
            *self._notes,
            "  publish a message:",
            f"    {publish_command(self.admin_url, token=settings.admin_token is not None)}",
        ]
        print("\n".join(lines), file=self._out, flush=True)
        # The queue URLs in use: in embedded mode the settings have none.
        shown = {**settings.summary(), "queue_url": self.queue_url, "publish_queue_url": self.publish_queue_url}
        _log.info("running", extra={"admin_url": self.admin_url, "settings": shown})

    async def _drain(self) -> dict[str, Any]:
        timeout_s = self.settings.drain_timeout_s
        _log.info(
            "drain started: receiving stops; the %d messages in flight get up to %g s to finish "
            "(MQ_DRAIN_TIMEOUT_S), then are handed back",
            self.server.in_flight,
            timeout_s,
            extra={"in_flight": self.server.in_flight, "drain_timeout_s": timeout_s},
        )
        try:
            pipeline, *_ = await asyncio.gather(
                self._drain_server(timeout_s), self._shutdown_publisher(timeout_s), self.operations.shutdown()
            )
        finally:
            await self._components.aclose()
        summary = {"server": pipeline, "publisher": self.publisher.stats()}
        _log.info("drained", extra=summary)
        if self.settings.exit_after_drain or self._signals:
            self._stop.set()
        elif self.admin_url:
            _log.info("drained: waiting for SIGTERM")
        return summary

    async def _drain_server(self, timeout_s: float) -> dict[str, Any]:
        try:
            return (await self.server.drain(timeout_s)).as_dict()
        except BaseException as exc:  # the pipeline had crashed: shutdown re-raises why
            if isinstance(exc, asyncio.CancelledError):
                raise
            health = self.server.health
            counts = {name: getattr(health, name) for name in ("handled", "failed", "deleted", "released")}
            return {**counts, "crashed": repr(exc)}

    async def _shutdown_publisher(self, timeout_s: float) -> None:
        try:
            await self.publisher.shutdown(timeout_s)
        except Exception:  # its batch loop had crashed: shutdown re-raises why
            _log.exception("the publisher had stopped on an error")

    async def _server_stopped(self) -> None:
        """Wait for the receive calls still in flight after a drain (a second signal cuts this short)."""
        if self.server.alive and self._ephemeral_queue:
            # The embedded server's queues end with this process: nothing a receive brings could be kept.
            _log.info("not waiting for the receive calls in flight: the embedded local SQS server stops too")
            self.server.hurry()
        elif self.server.alive:
            longest_s = self.settings.wait_time_seconds + RECEIVE_ANSWER_MARGIN_S
            _log.info(
                "waiting up to %g s for %d receive calls in flight (long polls of MQ_WAIT_TIME_SECONDS=%d s) to "
                "return and hand back what they bring; send the signal again to stop now",
                longest_s,
                self.server.polling,
                self.settings.wait_time_seconds,
                extra={"polling": self.server.polling, "at_most_s": longest_s},
            )
        try:
            await self.server.wait()
        except asyncio.CancelledError:
            raise
        except BaseException:
            pass

    async def _watch_pipeline(self) -> None:
        try:
            await self.server.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.crashed = True
            _log.error("the message pipeline crashed; /healthz reports it", exc_info=exc)

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
            self.server.hurry()
        else:
            _log.info("%s: already stopping as fast as it can", name)


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
