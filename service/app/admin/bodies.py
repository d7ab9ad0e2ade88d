"""Request input: one bounded, streaming reader for every route that takes a body, and JSON parsed safely.

The body is read chunk by chunk and refused (413) the moment it would pass the route's limit, so a request never
holds more than the limit in memory; uvicorn's flow control leaves the rest unread. The JSON may nest at most
`MAX_JSON_DEPTH` levels (400) and holds finite numbers only: NaN, Infinity and 1e999 are refused (422).
Query integers are ASCII digits only (`int()` would take '²' or Arabic-Indic digits).
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from service.app.admin.errors import Refused

MAX_JSON_DEPTH = 64
_NO_DEFAULT: Any = object()


class _NotFinite(Exception):
    """NaN, Infinity or a number too large for a float: JSON (RFC 8259) has no such numbers."""


async def read_body_bytes(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; raises Refused(413) before holding more."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    raw = bytearray()
    async for chunk in request.stream():
        if len(raw) + len(chunk) > limit:
            raise _too_large(limit)
        raw += chunk
    return bytes(raw)


async def read_json(request: Request, limit: int, *, empty: Any = _NO_DEFAULT) -> Any:
    """The body parsed as JSON (at most `limit` bytes); an empty body is `empty`, or refused (400) without one."""
    return parse_json(await read_body_bytes(request, limit), empty=empty)


def parse_json(raw: bytes, *, empty: Any = _NO_DEFAULT) -> Any:
    """JSON with finite numbers, nested at most MAX_JSON_DEPTH deep; raises Refused (400, or 422 for NaN)."""
    if not raw.strip():
        if empty is _NO_DEFAULT:
            raise Refused(400, "the request has no body: send a JSON object")
        return empty
    try:
        data = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        raise Refused(422, f"the request body holds {exc}: JSON numbers are finite (no NaN or Infinity)") from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise Refused(400, f"the request body is not valid JSON: {exc}") from exc
    if _deeper_than(data, MAX_JSON_DEPTH):
        raise _too_deep()
    return data


def query_integer(request: Request, name: str, *, default: int, low: int, high: int) -> int:
    """A query parameter as an integer from `low` to `high`, written in ASCII digits only; raises Refused(422)."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        raise Refused(422, f"{name}: must be an integer from {low} to {high} in ASCII digits, not {raw[:40]!a}")
    return int(raw)


def _refuse_constant(name: str) -> Any:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text[:40])
    return value


def _deeper_than(data: Any, limit: int) -> bool:
    """True when arrays and objects nest more than `limit` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _too_large(limit: int) -> Refused:
    return Refused(413, f"the request body is larger than {limit} bytes")


def _too_deep() -> Refused:
    return Refused(400, f"the request body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep")
