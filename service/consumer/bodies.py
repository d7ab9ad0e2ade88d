"""Typed bodies: a message body decoded as JSON, or validated into a type by Pydantic v2's TypeAdapter.

Pydantic is an optional extra (`pip install mq-service[pydantic]`), imported here only and only on first use,
so the core runs without it. A body that does not decode or validate raises InvalidBody (a Reject) with the
error as its reason.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import orjson

from service.errors import InvalidBody

if TYPE_CHECKING:
    from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")

MAX_ERRORS_SHOWN = 5
_ADAPTERS_CACHED = 256


def decode_json(body: str) -> Any:
    """`body` decoded as JSON; InvalidBody when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}") from exc


def validate_body(body: str, type_: type[T]) -> T:
    """`body` (JSON) validated into `type_`; InvalidBody when it is not JSON or does not validate."""
    adapter = type_adapter(type_)
    from pydantic import ValidationError  # noqa: PLC0415 - the optional extra, loaded on first use

    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        raise InvalidBody(describe(exc, type_)) from exc


def type_adapter(type_: type[T]) -> TypeAdapter[T]:
    """The TypeAdapter of `type_`, built once; without Pydantic an ImportError names the extra to install."""
    return cast("TypeAdapter[T]", _cached_adapter(cast("Hashable", type_)))


@functools.lru_cache(maxsize=_ADAPTERS_CACHED)
def _cached_adapter(type_: Hashable) -> Any:
    try:
        from pydantic import TypeAdapter  # noqa: PLC0415 - the optional extra, loaded on first use
    except ImportError as exc:
        raise ImportError("typed message bodies need Pydantic v2: pip install 'mq-service[pydantic]'") from exc
    return TypeAdapter(cast(Any, type_))


def describe(error: ValidationError, type_: type[Any]) -> str:
    """A one-line reason: what the body is not, and the first errors by location (no documentation links)."""
    name = getattr(type_, "__name__", repr(type_))
    problems = error.errors(include_url=False, include_input=False)
    if problems and problems[0]["type"] in {"json_invalid", "json_type"}:
        return f"the body is not valid JSON: {problems[0]['msg']}"
    shown = "; ".join(f"{_location(p['loc'])}: {p['msg']}" for p in problems[:MAX_ERRORS_SHOWN])
    more = f" (and {len(problems) - MAX_ERRORS_SHOWN} more)" if len(problems) > MAX_ERRORS_SHOWN else ""
    return f"the body does not validate as {name}: {shown}{more}"


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(body)"
