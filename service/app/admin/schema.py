"""The admin API's schemas: the /publish request as a JSON Schema, a small validator for it, the OpenAPI document.

The request schema is written once and used both to validate requests and to describe them in /openapi.json.
The validator covers the JSON Schema keywords these schemas use (type, properties, required,
additionalProperties, maxProperties, items, minItems, maxItems, minLength, maxLength, minimum, maximum,
oneOf/anyOf) and nothing more.
"""

from __future__ import annotations

from typing import Any

_TOO_LARGE = 413
_INVALID = 422
# A batch over its size limit (maxItems) is "too large"; every other violation is an invalid request.

Problem = tuple[int, str]  # (HTTP status, what is wrong and where)

_ATTRIBUTE_VALUE: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "minLength": 1, "title": "a string (DataType String)"},
        {
            "type": "object",
            "title": "an object {DataType, StringValue}",
            "additionalProperties": False,
            "required": ["DataType", "StringValue"],
            "properties": {"DataType": {"type": "string", "minLength": 1}, "StringValue": {"type": "string"}},
        },
    ]
}


def request_schema(max_batch: int) -> dict[str, Any]:
    """The JSON Schema of a POST /publish request: one message, or `{"messages": [...]}`."""
    token = {"type": "string", "minLength": 1, "maxLength": 128}
    message = {
        "title": 'one message {"body": ...}',
        "type": "object",
        "additionalProperties": False,
        "required": ["body"],
        "properties": {
            "body": {
                "type": ["string", "object", "array", "number", "boolean"],
                "description": "The message body; anything but a string is sent as compact JSON.",
            },
            "message_attributes": {"type": "object", "maxProperties": 10, "additionalProperties": _ATTRIBUTE_VALUE},
            "route": {"type": "string", "minLength": 1, "maxLength": 256, "description": "The `route` attribute."},
            "partition_key": {"type": "string", "minLength": 1, "maxLength": 256},
            "delay_s": {"type": "integer", "minimum": 0, "maximum": 900},
            "group_id": token | {"description": "MessageGroupId (FIFO queues)."},
            "deduplication_id": token | {"description": "MessageDeduplicationId (FIFO queues)."},
        },
    }
    batch = {
        "title": 'a batch {"messages": [...]}',
        "type": "object",
        "additionalProperties": False,
        "required": ["messages"],
        "properties": {"messages": {"type": "array", "minItems": 1, "maxItems": max_batch, "items": message}},
    }
    return {"oneOf": [message, batch]}


def schema_errors(schema: dict[str, Any], value: Any, path: str = "$") -> list[Problem]:
    """What is wrong with `value` against `schema`, as (status, text) pairs; empty when it is valid."""
    kind = schema.get("type")
    if kind is not None and not _has_type(value, kind):
        return [(_INVALID, f"{path}: must be {_type_text(kind)}, not {_json_type(value)}")]
    for keyword in ("oneOf", "anyOf"):
        if keyword in schema:
            return _branch_errors(schema[keyword], value, path)
    if isinstance(value, dict):
        return _object_errors(schema, value, path)
    if isinstance(value, list):
        return _array_errors(schema, value, path)
    return _scalar_errors(schema, value, path)


def _branch_errors(branches: list[dict[str, Any]], value: Any, path: str) -> list[Problem]:
    """Validate against the branch the value's type (and, for objects, its required keys) selects."""
    for branch in branches:
        required = branch.get("required", ()) if isinstance(value, dict) else ()
        if _has_type(value, branch.get("type")) and all(key in value for key in required):
            return schema_errors(branch, value, path)
    forms = "; or ".join(str(branch.get("title", branch.get("type"))) for branch in branches)
    return [(_INVALID, f"{path}: must be {forms}")]


def _object_errors(schema: dict[str, Any], value: dict[str, Any], path: str) -> list[Problem]:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    problems = [(_INVALID, f"{path}: '{key}' is required") for key in schema.get("required", ()) if key not in value]
    if len(value) > schema.get("maxProperties", len(value)):
        problems.append((_INVALID, f"{path}: at most {schema['maxProperties']} entries"))
    for key, item in value.items():
        if key in properties:
            problems += schema_errors(properties[key], item, f"{path}.{key}")
        elif extra is False:
            allowed = ", ".join(properties)
            problems.append((_INVALID, f"{path}: unknown field '{key}' (allowed: {allowed})"))
        elif isinstance(extra, dict):
            problems += schema_errors(extra, item, f"{path}.{key}")
    return problems


def _array_errors(schema: dict[str, Any], value: list[Any], path: str) -> list[Problem]:
    if len(value) < schema.get("minItems", 0):
        return [(_INVALID, f"{path}: at least {schema['minItems']} items")]
    if len(value) > schema.get("maxItems", len(value)):
        return [(_TOO_LARGE, f"{path}: at most {schema['maxItems']} items, not {len(value)}")]
    items = schema.get("items")
    if items is None:
        return []
    return [problem for i, item in enumerate(value) for problem in schema_errors(items, item, f"{path}[{i}]")]


def _scalar_errors(schema: dict[str, Any], value: Any, path: str) -> list[Problem]:
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return [(_INVALID, f"{path}: at least {schema['minLength']} characters")]
        if len(value) > schema.get("maxLength", len(value)):
            return [(_INVALID, f"{path}: at most {schema['maxLength']} characters")]
    elif isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            return [(_INVALID, f"{path}: must be from {low} to {high}")]
    return []


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _has_type(value: Any, kind: str | list[str] | None) -> bool:
    if kind is None:
        return True
    kinds = [kind] if isinstance(kind, str) else kind
    if isinstance(value, bool):
        return "boolean" in kinds
    return any(isinstance(value, _TYPES[k]) for k in kinds)


def _json_type(value: Any) -> str:
    return next(name for name, types in _TYPES.items() if _has_type(value, name) and isinstance(value, types))


def _type_text(kind: str | list[str]) -> str:
    kinds = [kind] if isinstance(kind, str) else kind
    return " or ".join(("an " if k[0] in "aeiou" else "a ") + k for k in kinds)


def _json(schema: dict[str, Any] | str, description: str) -> dict[str, Any]:
    if isinstance(schema, str):
        schema = {"$ref": f"#/components/schemas/{schema}"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(summary: str, responses: dict[str, dict[str, Any]], *, protected: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if protected:
        operation["security"] = [{"bearer": []}]
        responses["401"] = _json("Error", "Missing or wrong bearer token (MQ_ADMIN_TOKEN).")
    return operation


_OBJECT = {"type": "object"}
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "problems": {"type": "array"}},
    "required": ["error"],
}
_OUTCOME = {
    "type": "object",
    "properties": {
        "message_id": {"type": "string"},
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "sender_fault": {"type": "boolean"},
            },
        },
    },
}
_PUBLISH_RESPONSES = {
    "200": _json(
        {
            "oneOf": [
                {"$ref": "#/components/schemas/PublishOutcome"},
                {"$ref": "#/components/schemas/PublishBatchOutcome"},
            ]
        },
        "Every message was accepted by SQS.",
    ),
    "207": _json("PublishBatchOutcome", "A batch of which some messages were accepted and some failed."),
    "400": _json("Error", "The body is not JSON."),
    "413": _json("Error", "The body is over 10 MiB or the batch has too many messages."),
    "422": _json("Error", "The request does not match the schema, or SQS's rules refuse a message: nothing sent."),
    "502": _json("PublishOutcome", "SQS refused or failed every message."),
    "503": _json("Error", "The service is draining."),
}


def openapi_document(max_batch: int, *, protected: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the admin API; `protected` marks the routes that need the bearer token."""
    batch_outcome = {
        "type": "object",
        "properties": {
            "published": {"type": "integer"},
            "failed": {"type": "integer"},
            "results": {"type": "array", "items": {"$ref": "#/components/schemas/PublishOutcome"}},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "mq-service admin API", "version": "1"},
        "paths": _paths(max_batch, protected=protected),
        "components": {
            "schemas": {"Error": _ERROR, "PublishOutcome": _OUTCOME, "PublishBatchOutcome": batch_outcome},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _paths(max_batch: int, *, protected: bool) -> dict[str, Any]:
    def probe(summary: str) -> dict[str, Any]:
        responses = {"200": _json(_OBJECT, "Yes."), "503": _json(_OBJECT, "No, with a `reason`.")}
        return {"get": _operation(summary, responses, protected=False)}

    drain = _operation(
        "Stop receiving, finish or hand back in-flight messages, flush; answers when done.",
        {"200": _json(_OBJECT, "The shutdown summary of the pipeline and the publisher.")},
        protected=protected,
    )
    publish = _operation(
        "Publish one message or a batch; answers once SQS accepted or refused each.",
        dict(_PUBLISH_RESPONSES),
        protected=protected,
    )
    publish["requestBody"] = {"required": True, "content": {"application/json": {"schema": request_schema(max_batch)}}}
    status = _operation(
        "Pipeline state and counters, publisher counters, settings.",
        {"200": _json(_OBJECT, "The status.")},
        protected=protected,
    )
    document = _operation("This document.", {"200": _json(_OBJECT, "OpenAPI 3.1.")}, protected=False)
    return {
        "/healthz": probe("Liveness: the event loop and the receive loop are alive."),
        "/readyz": probe("Readiness: receives succeed and the service is not draining."),
        "/drain": {"get": drain, "post": drain},
        "/publish": {"post": publish},
        "/status": {"get": status},
        "/openapi.json": {"get": document},
    }
