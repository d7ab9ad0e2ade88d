"""The POST /publish request as a JSON Schema, for the publish queue's type, and its validation (jsonschema).

The schema is the contract: `/openapi.json` publishes it and every request is validated against it, so a
request is accepted exactly when it matches (SQS's byte limit, which no schema can state, aside). It carries
SQS's rules that a schema can state (characters, attribute names and types, counts, delays, FIFO fields), with
the same patterns the Publisher's checks use; a standard queue's schema has no FIFO fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from service.app.admin.problems import ERROR_KEY, describe_error, kind_of
from service.publishing.entry import (
    ATTRIBUTE_NAME,
    DATA_TYPE_LABEL,
    FIFO_TOKEN,
    MAX_ATTRIBUTE_NAME,
    MAX_DATA_TYPE,
    MAX_DELAY_SECONDS,
    MAX_MESSAGE_ATTRIBUTES,
    REFUSED_CHARACTERS,
    RESERVED_PREFIX,
)

_TEXT = {"pattern": f"^[^{REFUSED_CHARACTERS}]*$", ERROR_KEY: "contains a character SQS refuses"}
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?$"
_NAMES = {
    "type": "string",
    "maxLength": MAX_ATTRIBUTE_NAME,
    "pattern": f"^{ATTRIBUTE_NAME}$",
    "not": {"pattern": f"^{RESERVED_PREFIX}"},
    ERROR_KEY: f"is not an attribute name: up to {MAX_ATTRIBUTE_NAME} of [A-Za-z0-9_-] in dot-separated words, "
    "not starting with 'AWS.' or 'Amazon.'",
}


def _typed_value(kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": f"{{DataType: {kind}[.label], StringValue}}",
        "additionalProperties": False,
        "required": ["DataType", "StringValue"],
        "properties": {
            "DataType": {"type": "string", "maxLength": MAX_DATA_TYPE, "pattern": f"^{kind}{DATA_TYPE_LABEL}$"},
            "StringValue": value,
        },
    }


_ATTRIBUTE_VALUE = {
    "anyOf": [
        {"type": "string", "minLength": 1, "title": "a string (DataType String)"} | _TEXT,
        _typed_value("String", {"type": "string", "minLength": 1} | _TEXT),
        _typed_value("Number", {"type": "string", "pattern": _NUMBER, ERROR_KEY: "is not a number"}),
    ],
    ERROR_KEY: "must be a non-empty string, {DataType: String[.label], StringValue} "
    "or {DataType: Number[.label], StringValue: a number}",
}
_ROOM = {  # `route` and `partition_key` are attributes too: they take room among the 10
    "dependentSchemas": {
        key: {"properties": {"message_attributes": {"maxProperties": MAX_MESSAGE_ATTRIBUTES - 1}}}
        for key in ("route", "partition_key")
    },
    "if": {"required": ["route", "partition_key"]},
    "then": {"properties": {"message_attributes": {"maxProperties": MAX_MESSAGE_ATTRIBUTES - 2}}},
}


@dataclass(frozen=True)
class QueueKind:
    """What the publish queue accepts that changes the request schema."""

    fifo: bool = False
    content_based_deduplication: bool = False


def message_schema(kind: QueueKind) -> dict[str, Any]:
    """The JSON Schema of one message of a POST /publish request."""
    string = {"type": "string", "minLength": 1, "maxLength": 256} | _TEXT
    properties: dict[str, Any] = {
        "body": {
            "type": ["string", "object", "array", "number", "boolean"],
            "minLength": 1,
            "description": "The message body; anything but a string is sent as compact JSON.",
        }
        | _TEXT,
        "message_attributes": {
            "type": "object",
            "maxProperties": MAX_MESSAGE_ATTRIBUTES,
            "propertyNames": _NAMES,
            "additionalProperties": _ATTRIBUTE_VALUE,
        },
        "route": string | {"description": "The `route` attribute (the Router reads it)."},
        "partition_key": string | {"description": "The `partition_key` attribute (the partitioned processor)."},
        "delay_s": {"type": "integer", "minimum": 0, "maximum": MAX_DELAY_SECONDS},
    }
    required = ["body"]
    if kind.fifo:
        token = {"type": "string", "pattern": f"^{FIFO_TOKEN}$", ERROR_KEY: "is not 1-128 letters, digits, punctuation"}
        properties["delay_s"] = {"type": "integer", "minimum": 0, "maximum": 0, ERROR_KEY: "must be 0 on a FIFO queue"}
        properties["group_id"] = token | {"description": "MessageGroupId."}
        properties["deduplication_id"] = token | {"description": "MessageDeduplicationId."}
        required += [] if kind.content_based_deduplication else ["deduplication_id"]
        required.append("group_id")
    return {
        "title": 'one message {"body": ...}',
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": properties,
    } | _ROOM


def batch_schema(kind: QueueKind, max_batch: int) -> dict[str, Any]:
    """The JSON Schema of a batch: `{"messages": [...]}`."""
    messages = {"type": "array", "minItems": 1, "maxItems": max_batch, "items": message_schema(kind)}
    return {
        "title": 'a batch {"messages": [...]}',
        "type": "object",
        "additionalProperties": False,
        "required": ["messages"],
        "properties": {"messages": messages},
    }


def request_schema(kind: QueueKind, max_batch: int) -> dict[str, Any]:
    """The JSON Schema of a POST /publish request: one message, or a batch."""
    return {"oneOf": [message_schema(kind), batch_schema(kind, max_batch)]}


class RequestValidator:
    """Validates POST /publish requests against the schema; problems come as `{"path", "message"}`."""

    MAX_PROBLEMS = 20

    def __init__(self, kind: QueueKind, max_batch: int) -> None:
        self._message = Draft202012Validator(message_schema(kind))
        self._batch = Draft202012Validator(batch_schema(kind, max_batch))

    def problems(self, data: Any) -> list[dict[str, Any]]:
        """What is wrong with `data`; empty when it is a valid request."""
        if not isinstance(data, dict):
            shapes = 'one message {"body": ...} or a batch {"messages": [...]}'
            return [{"path": "$", "message": f"must be an object: {shapes}, not {kind_of(data)}"}]
        # The two shapes exclude each other (each forbids the other's required field): choosing by `messages`
        # is what `oneOf` does, with messages about the shape the client meant.
        validator = self._batch if "messages" in data else self._message
        errors = sorted(validator.iter_errors(data), key=lambda error: [str(part) for part in error.absolute_path])
        return [_problem(error) for error in errors[: self.MAX_PROBLEMS]]


def _problem(error: ValidationError) -> dict[str, Any]:
    path = "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return {"path": path, "message": describe_error(error)}
