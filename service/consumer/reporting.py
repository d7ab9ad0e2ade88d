"""Reporting: the pipeline's events fanned out to its observers, and the default error handler.

A hook that raises is a bug in the hook, never a reason to stop consuming: its error is logged once per
hook and kind, then only counted (`hook_errors`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from service.consumer.message import Message
from service.consumer.observer import PipelineObserver
from service.errors import HandlerError, MQError, ReceiveError, Reject, Retry

ErrorHandler: TypeAlias = Callable[[MQError], None]

_HOOK_NAMES = tuple(name for name in vars(PipelineObserver) if not name.startswith("_"))

_log = logging.getLogger("service.consumer")


def log_error(error: MQError) -> None:
    """The default error handler: one log line per error (for receive errors, per streak and every 10th)."""
    if isinstance(error, HandlerError) and isinstance(error.cause, Retry):
        _log.info("%s", error)
    elif isinstance(error, HandlerError) and isinstance(error.cause, Reject):
        _log.warning("message %s rejected: %s", error.message_id, error.cause.reason)
    elif isinstance(error, HandlerError):
        _log.warning("%s", error, exc_info=error.cause)
    elif isinstance(error, ReceiveError):
        if error.consecutive == 1 or error.consecutive % 10 == 0:
            _log.warning("receive failed (%d in a row): %s", error.consecutive, error)
    else:
        _log.error("%s", error)


class Observers(PipelineObserver):
    """Tells every observer, in order; an observer that raises is logged (once per hook and kind) and skipped."""

    def __init__(self, observers: Sequence[PipelineObserver]) -> None:
        # Each hook's bound methods, looked up once: `_tell` runs for every message.
        self._hooks = {name: tuple(getattr(o, name) for o in observers) for name in _HOOK_NAMES}
        self.hook_errors: Counter[str] = Counter()

    def queue_checked(self) -> None:
        self._tell("queue_checked")

    def received(self, messages: Sequence[Message], duration_s: float) -> None:
        self._tell("received", messages, duration_s)

    def receive_failed(self, error: Exception, duration_s: float) -> None:
        self._tell("receive_failed", error, duration_s)

    def handled(self, message: Message, duration_s: float, error: BaseException | None) -> None:
        self._tell("handled", message, duration_s, error)

    def retry_scheduled(self, message: Message, delay_s: int) -> None:
        self._tell("retry_scheduled", message, delay_s)

    def deleted(self, messages: Sequence[Message]) -> None:
        self._tell("deleted", messages)

    def rejected(self, messages: Sequence[Message]) -> None:
        self._tell("rejected", messages)

    def released(self, messages: Sequence[Message]) -> None:
        self._tell("released", messages)

    def visibility_extended(self, messages: Sequence[Message], timeout_s: int) -> None:
        self._tell("visibility_extended", messages, timeout_s)

    def lease_lost(self, message: Message, reason: str) -> None:
        self._tell("lease_lost", message, reason)

    def held_back(self, message: Message) -> None:
        self._tell("held_back", message)

    def _tell(self, hook: str, *args: Any) -> None:
        for method in self._hooks[hook]:
            try:
                method(*args)
            except Exception as exc:
                self._hook_failed(method, hook, exc)

    def _hook_failed(self, method: Callable[..., None], hook: str, exc: Exception) -> None:
        owner = getattr(method, "__self__", method)
        key = f"{type(owner).__name__}.{hook}: {type(exc).__name__}"
        self.hook_errors[key] += 1
        if self.hook_errors[key] == 1:
            _log.error("observer hook %s raised; the pipeline goes on (counted from now on)", key, exc_info=exc)


def guarded(error_handler: ErrorHandler, hook_errors: Counter[str]) -> ErrorHandler:
    """The error handler, with its own failures logged once per kind and counted, never raised into the pipeline."""

    def report(error: MQError) -> None:
        try:
            error_handler(error)
        except Exception as exc:
            key = f"error_handler: {type(exc).__name__}"
            hook_errors[key] += 1
            if hook_errors[key] == 1:
                _log.error("the error handler raised; the pipeline goes on (counted from now on)", exc_info=exc)

    return report
