"""Settings: the service's configuration, read once from `MQ_*` variables and flags, validated, frozen."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, cast

from service.consumer.handler import Handler, SyncHandler
from service.consumer.processors import PROCESSOR_NAMES, ProcessorName
from service.consumer.retry import MAX_VISIBILITY_TIMEOUT
from service.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "text")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

Parser = Callable[[str, str], Any]  # (where the value came from, raw text) -> value


@dataclass(frozen=True)
class Settings:
    """Everything `mq-service run` is configured with. Build it with `from_env`; an invalid value raises ConfigError."""

    queue_url: str = ""
    handler: str = "handlers.example:router"
    concurrency: int = 10
    processor: ProcessorName = "bounded"
    max_number_of_messages: int = 10
    wait_time_seconds: int = 20
    visibility_timeout: int = 30
    deletion_interval_s: float = 10.0
    visibility_heartbeat: bool = True
    admin_host: str = "127.0.0.1"
    admin_port: int = 8080
    admin_token: str | None = field(default=None, repr=False)
    drain_timeout_s: float = 25.0
    exit_after_drain: bool = False
    log_level: str = "INFO"
    log_format: str = "auto"
    publish_queue_url: str = ""
    publish_max_batch: int = 100
    # How long /publish waits for companions in a SendMessageBatch: low, since an HTTP caller waits too.
    publish_interval_s: float = 0.05
    # The SQS client of the Server and the Publisher: "lean" costs the least CPU per message.
    sqs_client: str = "lean"
    # The event loop: uvloop when installed ("auto"), or the standard asyncio loop.
    event_loop: str = "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], overrides: Mapping[str, str] | None = None) -> Settings:
        """Parse `MQ_*` variables from `environ`; `overrides` (by variable name, from flags) win over them.

        An empty value counts as unset. Raises ConfigError naming the variable (or flag) and what is allowed.
        """
        values: dict[str, Any] = {}
        for name, variable in ENV_VARIABLES.items():
            source, raw = _lookup(variable, environ, overrides or {})
            if raw:
                values[name] = _PARSERS[name](source, raw)
        settings = cls(**values)
        settings._check_together(overrides or {})
        return settings

    @property
    def embedded(self) -> bool:
        """True when no queue URL is configured: the service starts its own local SQS server."""
        return not self.queue_url

    def summary(self) -> dict[str, Any]:
        """The settings without secrets, JSON-ready (for /status and the start-up log)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "admin_token"}
        data["admin_token_set"] = self.admin_token is not None
        return data

    def _check_together(self, overrides: Mapping[str, str]) -> None:
        if not self.deletion_interval_s < self.visibility_timeout:
            variable = ENV_VARIABLES["deletion_interval_s"]
            raise ConfigError(
                _where(variable, overrides),
                f"{self.deletion_interval_s:g}",
                f"less than MQ_VISIBILITY_TIMEOUT ({self.visibility_timeout}), "
                "or handled messages reappear before they are deleted",
            )


def flag_for(variable: str) -> str:
    """The command-line flag that mirrors an `MQ_*` variable: MQ_QUEUE_URL -> --queue-url."""
    return "--" + variable.removeprefix("MQ_").lower().replace("_", "-")


def load_handler(path: str, *, variable: str = "MQ_HANDLER") -> Handler | SyncHandler:
    """Import `module:attribute` and return the handler it names; any failure is a ConfigError."""
    module_name, _, attribute = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(variable, path, f"an importable module:attribute (importing {module_name}: {exc!r})") from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ConfigError(variable, path, f"an importable module:attribute ({module_name} has no {attribute})")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(variable, path, "a callable handler (a Router, an async or a plain function)")
    return cast(Handler | SyncHandler, target)


def _lookup(variable: str, environ: Mapping[str, str], overrides: Mapping[str, str]) -> tuple[str, str]:
    if overrides.get(variable):
        return _where(variable, overrides), overrides[variable].strip()
    return variable, environ.get(variable, "").strip()


def _where(variable: str, overrides: Mapping[str, str]) -> str:
    return f"{flag_for(variable)} ({variable})" if overrides.get(variable) else variable


def _integer(low: int, high: int) -> Parser:
    def parse(source: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ConfigError(source, raw, f"an integer from {low} to {high}")
        return value

    return parse


def _number(low: float, high: float, *, low_open: bool = False) -> Parser:
    def parse(source: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high or (low_open and value == low):
            bound = f"more than {low:g}" if low_open else f"from {low:g}"
            raise ConfigError(source, raw, f"a number of seconds {bound} to {high:g}")
        return value

    return parse


def _choice(*allowed: str, upper: bool = False) -> Parser:
    def parse(source: str, raw: str) -> str:
        value = raw.upper() if upper else raw.lower()
        if value not in allowed:
            raise ConfigError(source, raw, f"one of {', '.join(allowed)}")
        return value

    return parse


def _boolean(source: str, raw: str) -> bool:
    value = raw.lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(source, raw, "true/false, 1/0 or yes/no")
    return value in _TRUE


def _url(source: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(source, raw, "an http(s) SQS queue URL, or empty for the embedded local SQS server")
    return raw


def _text(source: str, raw: str) -> str:
    return raw


def _import_path(source: str, raw: str) -> str:
    if not _IMPORT_PATH.match(raw):
        raise ConfigError(source, raw, "an import path module:attribute, e.g. handlers.example:router")
    return raw


_PARSERS: dict[str, Parser] = {
    "queue_url": _url,
    "handler": _import_path,
    "concurrency": _integer(1, 100_000),
    "processor": _choice(*PROCESSOR_NAMES),
    "max_number_of_messages": _integer(1, 10),
    "wait_time_seconds": _integer(0, 20),
    "visibility_timeout": _integer(1, MAX_VISIBILITY_TIMEOUT),
    "deletion_interval_s": _number(0, MAX_VISIBILITY_TIMEOUT, low_open=True),
    "visibility_heartbeat": _boolean,
    "admin_host": _text,
    "admin_port": _integer(0, 65535),
    "admin_token": _text,
    "drain_timeout_s": _number(0, 3600),
    "exit_after_drain": _boolean,
    "log_level": _choice(*LOG_LEVELS, upper=True),
    "log_format": _choice(*LOG_FORMATS),
    "publish_queue_url": _url,
    "publish_max_batch": _integer(1, 1000),
    "publish_interval_s": _number(0, 60, low_open=True),
    "sqs_client": _choice("lean", "botocore"),
    "event_loop": _choice("auto", "asyncio", "uvloop"),
}

ENV_VARIABLES: dict[str, str] = {name: "MQ_" + name.upper() for name in _PARSERS}
"""Settings field -> environment variable (MQ_QUEUE_URL, ...); the flags are `flag_for(variable)`."""
