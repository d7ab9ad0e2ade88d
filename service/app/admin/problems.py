"""Plain-English wording of JSON Schema violations (jsonschema's own messages repeat the whole offending value)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jsonschema import ValidationError

ERROR_KEY = "x-error"
"""A schema's own wording of what is wrong when a value does not match it."""

_MAX_SHOWN = 40  # characters of a refused value quoted back


def describe_error(error: ValidationError) -> str:
    """What is wrong, for a person: 'at least 1 item', "unknown field 'x'", ..."""
    describe = _BY_KEYWORD.get(str(error.validator))
    text = describe(error.validator_value, error.instance, error.schema) if describe else None
    if text is None:
        own = error.schema.get(ERROR_KEY) if isinstance(error.schema, dict) else None
        text = f"{_shown(error.instance)} {own}" if own else error.message[:200]
    return text


def _shown(value: Any) -> str:
    if isinstance(value, str):
        quoted = ascii(value[:_MAX_SHOWN])
        return quoted if len(value) <= _MAX_SHOWN else quoted[:-1] + "...'"
    return "the value"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _type(expected: Any, instance: Any, schema: Any) -> str:
    kinds = [expected] if isinstance(expected, str) else list(expected)
    wanted = " or ".join(("an " if kind[0] in "aeiou" else "a ") + kind for kind in kinds)
    return f"must be {wanted}, not {kind_of(instance)}"


def _required(expected: Any, instance: Any, schema: Any) -> str:
    missing = [name for name in expected if name not in instance]
    return ", ".join(f"'{name}' is required" for name in missing)


def _additional(expected: Any, instance: Any, schema: Any) -> str | None:
    if expected is not False:
        return None
    known = schema.get("properties", {})
    unknown = ", ".join(ascii(name) for name in instance if name not in known)
    return f"unknown field {unknown} (allowed: {', '.join(known)})"


def _pattern(expected: Any, instance: Any, schema: Any) -> str | None:
    if not (expected.startswith("^[^") and expected.endswith("]*$")):
        return None
    refused = re.search(f"[{expected[3:-3]}]", instance)  # an "allowed characters" pattern: where it fails
    if refused is None:
        return None
    return f"contains U+{ord(refused.group()):04X} at index {refused.start()}, which SQS refuses"


def _range(expected: Any, instance: Any, schema: Any) -> str | None:
    if ERROR_KEY in schema:
        return None
    return f"must be from {schema.get('minimum')} to {schema.get('maximum')}"


_Describe = Callable[[Any, Any, Any], str | None]
_BY_KEYWORD: dict[str, _Describe] = {
    "type": _type,
    "required": _required,
    "additionalProperties": _additional,
    "minItems": lambda n, value, schema: f"at least {_count(n, 'item')}",
    "maxItems": lambda n, value, schema: f"at most {_count(n, 'item')}, not {len(value)}",
    "minLength": lambda n, value, schema: "must not be empty" if n == 1 else f"at least {_count(n, 'character')}",
    "maxLength": lambda n, value, schema: None if ERROR_KEY in schema else f"at most {_count(n, 'character')}",
    "maxProperties": lambda n, value, schema: (
        f"at most {_count(n, 'attribute')}" + ("" if n == 10 else " (route and partition_key are attributes too)")
    ),
    "pattern": _pattern,
    "minimum": _range,
    "maximum": _range,
}


def kind_of(value: Any) -> str:
    """'a string', 'an object', ... for messages."""
    for name, kinds in (("null", type(None)), ("a boolean", bool), ("a number", (int, float)), ("a string", str)):
        if isinstance(value, kinds):
            return name
    return "an object" if isinstance(value, dict) else "an array"
