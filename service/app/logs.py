"""Logging setup: JSON lines for machines (containers), readable text on a terminal; stdlib `logging` only."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from `extra={...}`.
# uvicorn adds `color_message`, a copy of the message with terminal colour codes.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}
# Libraries that log a line per request: kept quiet unless they have something to warn about.
_CHATTY_LOGGERS = ("werkzeug", "moto", "botocore", "aiobotocore", "urllib3", "uvicorn.access", "flask_cors")


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields passed with `extra={...}`."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and not k.startswith("_")}


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the `extra` fields, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(extra_fields(record))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    """`HH:MM:SS LEVEL logger: message key=value ...` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The base line followed by the `extra` fields."""
        line = super().formatMessage(record)
        fields = " ".join(f"{k}={v}" for k, v in extra_fields(record).items())
        return f"{line} {fields}" if fields else line


def setup_logging(
    *,
    level: str = "INFO",
    log_format: str = "auto",
    stream: TextIO | None = None,
    filters: Sequence[logging.Filter] = (),
) -> None:
    """Send every log record to `stream` (stderr) as JSON or text; `auto` picks text on a terminal.

    `filters` may add fields to every record (the trace and span ids of the message being handled).
    """
    stream = stream or sys.stderr
    use_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter() if use_json else TextFormatter())
    for log_filter in filters:
        handler.addFilter(log_filter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
