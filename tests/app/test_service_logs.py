"""Logging setup: JSON lines off a terminal, text on one, `extra` fields in both, chatty libraries quieted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.app.logs import setup_logging


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_extra_fields_and_tracebacks() -> None:
    stream = io.StringIO()
    setup_logging(level="INFO", log_format="auto", stream=stream)
    log = logging.getLogger("service.test")
    log.info("server started", extra={"queue_url": "http://q", "capacity": 4})
    log.debug("not shown")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("handler failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "server started"
    assert (first["level"], first["logger"], first["queue_url"], first["capacity"]) == (
        "INFO",
        "service.test",
        "http://q",
        4,
    )
    assert "ValueError: bad" in second["exception"]


def test_text_on_a_terminal_with_extra_fields() -> None:
    stream = Terminal()
    setup_logging(level="DEBUG", log_format="auto", stream=stream)
    logging.getLogger("service.test").debug("drained", extra={"released": 2})
    line = stream.getvalue().strip()
    assert " DEBUG " in line
    assert line.endswith("service.test: drained released=2")


def test_request_logs_of_libraries_are_quiet() -> None:
    stream = io.StringIO()
    setup_logging(level="DEBUG", log_format="json", stream=stream)
    logging.getLogger("werkzeug").info("GET / 200")
    logging.getLogger("botocore.endpoint").debug("request")
    logging.getLogger("werkzeug").warning("kept")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["kept"]
