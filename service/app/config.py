"""Settings: the service's configuration, read once from `MQ_*` variables and flags, validated, frozen."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from service.consumer.batching import AnyHandler, BatchHandler
from service.consumer.processors import PROCESSOR_NAMES, ProcessorName
from service.consumer.settings import INTEGER_RANGES, SETTING_NAMES, ServerSettings
from service.errors import MAX_VISIBILITY_TIMEOUT, ConfigError
from service.idempotency.guard import DEFAULT_EXPIRES_S, MAX_EXPIRES_S
from service.idempotency.keys import check_key
from service.idempotency.stores import check_store_url, redacted
from service.sqs.client import CLIENT_KINDS, ClientKind
from service.sqs.envelopes import ENVELOPE_MODES, EnvelopeMode
from service.telemetry.setup import EXPORT_PATHS

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("auto", "json", "text")
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_HOST_NAME = re.compile(r"^(\*|\.?[A-Za-z0-9_.-]+|[0-9A-Fa-f:.]+|\[[0-9A-Fa-f:.]+\])$")
MIN_TOKEN_LENGTH = 16
_VERBATIM = ("MQ_ADMIN_TOKEN",)
# The routes the token guards (tests/app/test_admin.py checks this against the admin API's own document).
GUARDED_ROUTES = (
    "/status /publish /drain /pause /resume /limits /queues /errors /dlq/messages /dlq/redrive /queues/{name} "
    "/queues/{name}/pause /queues/{name}/resume /queues/{name}/limits /queues/{name}/errors "
    "/queues/{name}/dlq/messages /queues/{name}/dlq/redrive"
)

Parser = Callable[[str, str], Any]  # (where the value came from, raw text) -> value


@dataclass(frozen=True)
class Settings:
    """Everything `mq-service run` is configured with. Build it with `from_env`; an invalid value raises ConfigError."""

    queue_url: str = ""
    handler: str = "handlers.example:router"
    concurrency: int = 10
    processor: ProcessorName = "auto"
    max_number_of_messages: int = 10
    wait_time_seconds: int = 20
    visibility_timeout: int = 30
    # None: the smaller of 10 s and half the visibility timeout (ServerSettings derives it).
    deletion_interval_s: float | None = None
    visibility_heartbeat: bool = True
    max_messages_per_s: float | None = None
    # A fair share per message group (bounded and unbounded processors): None sets no cap.
    max_in_flight_per_group: int | None = None
    cancel_on_lease_lost: bool = False
    admin_host: str = "127.0.0.1"
    admin_port: int = 8080
    admin_token: str | None = field(default=None, repr=False)
    # Host names the admin API answers to; empty: loopback names and this machine's (the pod's) own.
    admin_allowed_hosts: tuple[str, ...] = ()
    drain_timeout_s: float = 25.0
    exit_after_drain: bool = False
    log_level: str = "INFO"
    log_format: str = "auto"
    publish_queue_url: str = ""
    publish_max_batch: int = 100
    # How long /publish waits for companions in a SendMessageBatch: low, since an HTTP caller waits too.
    publish_interval_s: float = 0.05
    # Large payloads through S3 (Amazon SQS Extended Client format): on when a bucket is set.
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_threshold_bytes: int = 262_144
    s3_delete_payloads: bool = True
    s3_legacy_attribute: bool = False
    s3_max_body_bytes: int = 32 * 1_048_576
    # The SQS client of the Server and the Publisher: "lean" costs the least CPU per message.
    sqs_client: ClientKind = "lean"
    # Bodies wrapped by SNS, EventBridge or S3 are opened for the handler: "auto" opens any unmistakable one.
    envelope: EnvelopeMode = "auto"
    # The event loop: uvloop when installed ("auto"), or the standard asyncio loop.
    event_loop: str = "auto"
    # How the service's own spans are exported: lean records encoded straight to OTLP, or the SDK's spans.
    tracing_export: str = "lean"
    # The idempotency guard around the handler: on when a store is set (docs/idempotency.md).
    idempotency_store: str = field(default="", repr=False)
    idempotency_key: str = "message_id"
    idempotency_expires_s: int = DEFAULT_EXPIRES_S

    @classmethod
    def from_env(cls, environ: Mapping[str, str], overrides: Mapping[str, str] | None = None) -> Settings:
        """Parse `MQ_*` variables from `environ`; `overrides` (by variable name, from flags) win over them.

        An empty value counts as unset. Raises ConfigError naming the variable (or flag) and what is allowed.
        """
        return cls.from_layers([env_layer(environ), flag_layer(overrides or {})])

    @classmethod
    def from_layers(cls, layers: Sequence[Layer]) -> Settings:
        """Parse raw values from `layers` (each: field -> (where it came from, raw text)); later layers win.

        An empty value counts as unset. Raises ConfigError naming where the value came from and what is allowed.
        """
        chosen: dict[str, tuple[str, str]] = {}
        for layer in layers:
            chosen.update({name: (where, raw) for name, (where, raw) in layer.items() if raw})
        settings = cls(**{name: _PARSERS[name](where, raw) for name, (where, raw) in chosen.items()})
        settings._check_together({name: where for name, (where, _) in chosen.items()})
        return settings

    @property
    def embedded(self) -> bool:
        """True when no queue URL is configured: the service starts its own local SQS server."""
        return not self.queue_url

    def summary(self) -> dict[str, Any]:
        """The settings without secrets, JSON-ready (for /status and the start-up log)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "admin_token"}
        data["admin_token_set"] = self.admin_token is not None
        data["idempotency_store"] = redacted(self.idempotency_store)  # a Redis URL may carry a password
        return data

    def server_settings(self) -> ServerSettings:
        """The consumer's settings: the fields this shares with ServerSettings (the service's defaults differ
        from the library's: concurrency 10 and 20 s long polls, as a production consumer wants)."""
        return ServerSettings(**{name: getattr(self, name) for name in _SERVER_FIELDS})

    def _check_together(self, sources: Mapping[str, str]) -> None:
        """The rules that tie settings together are ServerSettings' own: checked there, reported by variable."""
        try:
            self.server_settings()
        except ConfigError as error:
            allowed = error.allowed
            for name in _SERVER_FIELDS:
                allowed = allowed.replace(name, ENV_VARIABLES[name])
            where = sources.get(error.name, ENV_VARIABLES[error.name])
            raise ConfigError(where, error.value, allowed) from error


Layer = Mapping[str, tuple[str, str]]
"""Raw settings from one source: field -> (where the value came from, raw text)."""


def env_layer(environ: Mapping[str, str]) -> Layer:
    """The `MQ_*` variables of `environ`, by field."""
    return {name: (variable, _trimmed(variable, environ.get(variable, ""))) for name, variable in ENV_VARIABLES.items()}


def flag_layer(overrides: Mapping[str, str]) -> Layer:
    """Flags (by variable name) as a layer: a flag is named with its variable in errors."""
    return {
        name: (_where(variable, overrides), _trimmed(variable, overrides[variable]))
        for name, variable in ENV_VARIABLES.items()
        if overrides.get(variable)
    }


def flag_for(variable: str) -> str:
    """The command-line flag that mirrors an `MQ_*` variable: MQ_QUEUE_URL -> --queue-url."""
    return "--" + variable.removeprefix("MQ_").lower().replace("_", "-")


def load_handler(path: str, *, variable: str = "MQ_HANDLER") -> AnyHandler:
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
    if isinstance(target, BatchHandler):
        return target
    if not callable(target):
        raise ConfigError(
            variable,
            path,
            "a callable handler (a Router, an async or a plain function) or a batch handler (service.batch)",
        )
    return cast(AnyHandler, target)


def _trimmed(variable: str, raw: str) -> str:
    # A secret is taken as given: a blank or padded token is refused rather than quietly trimmed away.
    return raw if variable in _VERBATIM else raw.strip()


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


def _number(low: float, high: float, *, low_open: bool = False, unit: str = "seconds") -> Parser:
    def parse(source: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high or (low_open and value == low):
            bound = f"more than {low:g}" if low_open else f"from {low:g}"
            raise ConfigError(source, raw, f"a number of {unit} {bound} to {high:g}")
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


def _publish_url(source: str, raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ConfigError(source, raw, "an http(s) SQS queue URL, or empty for the consumed queue")
    return raw


def _text(source: str, raw: str) -> str:
    return raw


def _token(source: str, raw: str) -> str:
    if len(raw) < MIN_TOKEN_LENGTH or not all("!" <= character <= "~" for character in raw):
        raise ConfigError(
            source,
            "<hidden>",
            f"at least {MIN_TOKEN_LENGTH} visible ASCII characters (letters, digits, punctuation; no spaces, "
            "no control or non-ASCII characters, which a browser or curl may not send as given)",
        )
    return raw


def _host_list(source: str, raw: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if not names or not all(_HOST_NAME.match(name) for name in names):
        raise ConfigError(
            source, raw, "comma-separated host names or addresses (`.example.com`: its subdomains; `*`: any host)"
        )
    return names


def _bucket(source: str, raw: str) -> str:
    if not _BUCKET.match(raw):
        raise ConfigError(source, raw, "an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens")
    return raw


def _import_path(source: str, raw: str) -> str:
    if not _IMPORT_PATH.match(raw):
        raise ConfigError(source, raw, "an import path module:attribute, e.g. handlers.example:router")
    return raw


# What each setting means, for `mq-service run --help` (its default comes from Settings and its allowed values from
# the parsers table below: the words a bad value is refused with).
_MEANINGS: dict[str, str] = {
    "queue_url": "the queue to consume",
    "handler": "the handler, as module:attribute (see handlers/README.md)",
    "concurrency": "messages handled at once",
    "processor": "auto: partitioned on a FIFO queue, bounded elsewhere; bounded: a pool of `concurrency` "
    "workers; unbounded: a task per message; partitioned: in order per partition_key (per MessageGroupId "
    "on a FIFO queue, kept under failure)",
    "max_number_of_messages": "messages asked for per ReceiveMessage call",
    "wait_time_seconds": "long-poll duration of a receive",
    "visibility_timeout": "seconds a received message stays invisible (extended while its handler runs)",
    "deletion_interval_s": "longest wait before a partial delete batch is sent; "
    "unset: the smaller of 10 s and half the visibility timeout",
    "max_messages_per_s": "messages received per second at most, per pod; unset: no limit",
    "visibility_heartbeat": "keep extending the visibility of messages still being handled",
    "max_in_flight_per_group": "messages of one group (MessageGroupId, else partition_key) handled at once per "
    "pod, for the bounded and unbounded processors; unset: no cap",
    "cancel_on_lease_lost": "cancel a handler whose message's lease is lost (its visibility could not be "
    "extended) instead of only setting Message.lease_lost",
    "admin_host": "the admin API's address",
    "admin_port": "the admin API's port; 0 picks a free one",
    "admin_token": "bearer token required by " + GUARDED_ROUTES + " (every route but the probes, /metrics, "
    "/openapi.json and the console's files); unset: no token (then bind only loopback)",
    "admin_allowed_hosts": "host names the admin API answers to (the Host header; against DNS rebinding)",
    "drain_timeout_s": "how long a drain lets running handlers finish before cancelling them",
    "exit_after_drain": "exit right after a /drain instead of waiting for SIGTERM",
    "log_level": "the log level",
    "log_format": "auto: text on a terminal, JSON lines otherwise",
    "publish_queue_url": "where POST /publish sends; empty: to the consumed queue",
    "publish_max_batch": "most messages in one POST /publish request",
    "publish_interval_s": "how long a published message waits for others to share its SendMessageBatch "
    "while a batch is in flight (a lone message goes at once)",
    "sqs_client": "the consumer's and the publisher's SQS client: lean (least CPU per message) or botocore",
    "event_loop": "auto: uvloop when installed, else asyncio's loop",
    "tracing_export": "how the service's own spans (message, publish, SQS calls) are exported: lean "
    "(encoded straight to OTLP, the least CPU) or sdk (through the OpenTelemetry SDK's span processors)",
    "envelope": "the envelope a body is opened from (SNS, EventBridge, S3 notifications; see "
    "docs/message-sources.md); auto: any of them when unmistakable; none: bodies are left alone",
    "s3_bucket": "large payloads through S3 (SQS Extended Client format) in this bucket; empty: off, "
    "except on the embedded local SQS server, which turns it on with a bucket of its own",
    "s3_prefix": "key prefix of the payload objects",
    "s3_threshold_bytes": "a message whose body and attributes exceed this goes to S3; 0: every message",
    "s3_delete_payloads": "delete a payload object once its message was deleted",
    "s3_legacy_attribute": "mark offloaded messages with SQSLargePayloadSize instead of ExtendedPayloadSize",
    "s3_max_body_bytes": "the largest body accepted for offloading",
    "idempotency_store": "run the handler once per key, with records in this store; empty: no guard",
    "idempotency_key": "what makes two messages the same for the idempotency guard",
    "idempotency_expires_s": "how long a completed key is remembered",
}


def _shown_default(default: Any) -> str:
    if default == ():
        return "the loopback names and this machine's own name and addresses"
    if default is None or default == "":
        return "unset" if default is None else "empty"
    if isinstance(default, bool):
        return str(default).lower()
    return f"{default:g}" if isinstance(default, float) else str(default)


def setting_help(name: str) -> str:
    """`meaning (default: D; allowed: A)` for a setting, from the tables the configuration is read with."""
    default = next(f.default for f in fields(Settings) if f.name == name)
    shown = _shown_default(default)
    try:
        _PARSERS[name]("", "\x00")  # no setting takes a NUL: its parser answers with what it allows
        allowed = "any text"
    except ConfigError as error:
        allowed = error.allowed
    return f"{_MEANINGS.get(name, '')} (default: {shown}; allowed: {allowed})".lstrip()


_PARSERS: dict[str, Parser] = {
    "queue_url": _url,
    "handler": _import_path,
    "concurrency": _integer(*INTEGER_RANGES["concurrency"]),
    "processor": _choice(*PROCESSOR_NAMES),
    "max_number_of_messages": _integer(*INTEGER_RANGES["max_number_of_messages"]),
    "wait_time_seconds": _integer(*INTEGER_RANGES["wait_time_seconds"]),
    "visibility_timeout": _integer(*INTEGER_RANGES["visibility_timeout"]),
    "deletion_interval_s": _number(0, MAX_VISIBILITY_TIMEOUT, low_open=True),
    "visibility_heartbeat": _boolean,
    "max_in_flight_per_group": _integer(*INTEGER_RANGES["max_in_flight_per_group"]),
    "cancel_on_lease_lost": _boolean,
    "max_messages_per_s": _number(0, 1_000_000, low_open=True, unit="messages per second"),
    "admin_host": _text,
    "admin_port": _integer(0, 65535),
    "admin_token": _token,
    "admin_allowed_hosts": _host_list,
    "drain_timeout_s": _number(0, 3600),
    "exit_after_drain": _boolean,
    "log_level": _choice(*LOG_LEVELS, upper=True),
    "log_format": _choice(*LOG_FORMATS),
    "publish_queue_url": _publish_url,
    "publish_max_batch": _integer(1, 1000),
    "publish_interval_s": _number(0, 60, low_open=True),
    "s3_bucket": _bucket,
    "s3_prefix": _text,
    "s3_threshold_bytes": _integer(0, 1_048_576),
    "s3_delete_payloads": _boolean,
    "s3_legacy_attribute": _boolean,
    "s3_max_body_bytes": _integer(1_048_576, 2 * 1024**3),
    "sqs_client": _choice(*CLIENT_KINDS),
    "event_loop": _choice("auto", "asyncio", "uvloop"),
    "tracing_export": _choice(*EXPORT_PATHS),
    "envelope": _choice(*ENVELOPE_MODES),
    "idempotency_store": check_store_url,
    "idempotency_key": check_key,
    "idempotency_expires_s": _integer(1, MAX_EXPIRES_S),
}

ENV_VARIABLES: dict[str, str] = {name: "MQ_" + name.upper() for name in _PARSERS}
"""Settings field -> environment variable (MQ_QUEUE_URL, ...); the flags are `flag_for(variable)`."""

_SERVER_FIELDS = tuple(name for name in SETTING_NAMES if name in ENV_VARIABLES)
