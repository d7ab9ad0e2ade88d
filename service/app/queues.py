"""The queue table: the queues one service consumes, each with its own handler and consumer settings.

Read from a TOML file (`mq-service run --config FILE`, or `MQ_CONFIG`): the service's settings at the top (the
`MQ_*` names, lower-case, without the prefix), `max_in_flight` (a budget of handler slots shared by all queues)
and one `[[queues]]` table per queue. A value in a queue's table wins over the top level, which wins over the
environment (a flag wins over both, except over a queue's own table). Without a file, the `MQ_*` configuration
is a table of one queue.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.app.config import ENV_VARIABLES, Layer, Settings, env_layer, flag_layer
from service.consumer.settings import SETTING_NAMES
from service.errors import ConfigError
from service.sqs.local import QUEUE_NAME
from service.sqs.urls import queue_name

CONFIG_VARIABLE = "MQ_CONFIG"
MAX_WEIGHT = 1000
MAX_IN_FLIGHT = 100_000
# SQS's own rule for queue names (a FIFO queue's ends in .fifo): also safe in an admin route's path.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
# Settings a queue's table may set: the consumer's, its handler and its URL (`url`). The rest is service-wide.
QUEUE_KEYS = ("url", "handler", *(name for name in SETTING_NAMES if name in ENV_VARIABLES))
_TABLE_ONLY = ("name", "weight")
_TOP_ONLY = ("max_in_flight", "queues")


@dataclass(frozen=True)
class QueueConfig:
    """One queue of the table: its name, its settings (the service's, with its table's values) and its weight."""

    name: str
    settings: Settings
    weight: int = 1

    @property
    def url(self) -> str:
        """The queue's URL; empty for a queue created on the embedded local SQS server."""
        return self.settings.queue_url


@dataclass(frozen=True)
class QueueTable:
    """The service-wide settings, the queues in order, and the optional pod-wide budget of handler slots."""

    settings: Settings
    queues: tuple[QueueConfig, ...]
    max_in_flight: int | None = None
    path: str = ""

    @property
    def embedded(self) -> bool:
        """True when no queue has a URL: the queues are created on an embedded local SQS server."""
        return not any(queue.url for queue in self.queues)

    @property
    def names(self) -> list[str]:
        """The queues' names, in the table's order."""
        return [queue.name for queue in self.queues]


def read_table(environ: Mapping[str, str], overrides: Mapping[str, str], path: str = "") -> QueueTable:
    """The queue table: from the TOML file at `path` (or `MQ_CONFIG`), else the `MQ_*` settings as one queue."""
    path = path or environ.get(CONFIG_VARIABLE, "").strip()
    if not path:
        settings = Settings.from_env(environ, overrides)
        name = queue_name(settings.queue_url) if settings.queue_url else QUEUE_NAME
        return QueueTable(settings, (QueueConfig(name, settings),))
    document = _load(path)
    base = [env_layer(environ), _top_layer(path, document), flag_layer(overrides)]
    settings = Settings.from_layers(base)
    tables = document.get("queues", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ConfigError(f"{path}: queues", tables, "[[queues]] tables")
    queues = tuple(_queue(path, index, table, base) for index, table in enumerate(tables, 1))
    if not queues:
        name = queue_name(settings.queue_url) if settings.queue_url else QUEUE_NAME
        queues = (QueueConfig(name, settings),)
    _check_queues(path, queues)
    return QueueTable(settings, queues, _max_in_flight(path, document.get("max_in_flight")), path)


def _load(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigError(CONFIG_VARIABLE, path, f"a readable TOML file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(CONFIG_VARIABLE, path, f"a valid TOML file ({exc})") from exc


def _raw(where: str, value: Any) -> str:
    """A TOML value as the text an `MQ_*` variable would hold, so the same parsers check it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise ConfigError(where, value, "a string, a number or a boolean")


def _top_layer(path: str, document: Mapping[str, Any]) -> Layer:
    layer: dict[str, tuple[str, str]] = {}
    for key, value in document.items():
        where = f"{path}: {key}"
        if key in _TOP_ONLY:
            continue
        if key not in ENV_VARIABLES:
            allowed = ", ".join([*ENV_VARIABLES, *_TOP_ONLY])
            raise ConfigError(where, key, f"a service setting ({allowed}) or [[queues]] tables")
        layer[key] = (where, _raw(where, value))
    return layer


def _queue(path: str, index: int, table: Mapping[str, Any], base: Sequence[Layer]) -> QueueConfig:
    shown = table.get("name") if isinstance(table.get("name"), str) else f"#{index}"
    prefix = f"{path}: [[queues]] {shown}"
    layer: dict[str, tuple[str, str]] = {}
    for key, value in table.items():
        where = f"{prefix}: {key}"
        if key in _TABLE_ONLY:
            continue
        if key not in QUEUE_KEYS:
            raise ConfigError(where, key, f"a per-queue setting ({', '.join([*_TABLE_ONLY, *QUEUE_KEYS])})")
        layer["queue_url" if key == "url" else key] = (where, _raw(where, value))
    # A queue's URL is its table's own: a top-level or MQ_QUEUE_URL one would make every queue the same queue.
    inherited = [{key: value for key, value in source.items() if key != "queue_url"} for source in base]
    settings = Settings.from_layers([*inherited, layer])
    name = table.get("name", queue_name(settings.queue_url) if settings.queue_url else "")
    if not isinstance(name, str) or not _NAME.match(name):
        allowed = "a queue name: 1-80 letters, digits, - and _ (FIFO: ending in .fifo); needed without a url"
        raise ConfigError(f"{prefix}: name", name, allowed)
    weight = table.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        raise ConfigError(f"{prefix}: weight", weight, f"an integer from 1 to {MAX_WEIGHT}")
    return QueueConfig(name, settings, weight)


def _check_queues(path: str, queues: Sequence[QueueConfig]) -> None:
    seen: set[str] = set()
    for queue in queues:
        if queue.name in seen:
            raise ConfigError(f"{path}: [[queues]] {queue.name}: name", queue.name, "a name no other queue has")
        seen.add(queue.name)
    with_url = [queue.name for queue in queues if queue.url]
    if with_url and len(with_url) != len(queues):
        missing = next(queue.name for queue in queues if not queue.url)
        raise ConfigError(
            f"{path}: [[queues]] {missing}: url", "", "a queue URL: every queue has one, or none (embedded local SQS)"
        )


def _max_in_flight(path: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IN_FLIGHT:
        raise ConfigError(f"{path}: max_in_flight", value, f"an integer from 1 to {MAX_IN_FLIGHT}")
    return value
