"""Shared by the operator's route modules: JSON bodies checked against a schema, error answers, OpenAPI operations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from starlette.requests import Request

from service.app.admin.auth import BearerGuard
from service.app.admin.bodies import MAX_JSON_DEPTH, read_json
from service.app.admin.errors import Refused, error_doc
from service.app.admin.openapi import JSON
from service.app.admin.problems import describe_error
from service.errors import SQSError

MAX_BODY_BYTES = 64 * 1024


async def read_body(request: Request, schema: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object checked against `schema`; an empty body is `{}`. Raises Refused."""
    data = await read_json(request, MAX_BODY_BYTES, empty={})
    problems = [_where(error) + describe_error(error) for error in Draft202012Validator(schema).iter_errors(data)]
    if problems:
        raise Refused(422, "invalid request: " + "; ".join(sorted(problems)))
    assert isinstance(data, dict)  # the schemas here all describe objects
    return data


def _where(error: ValidationError) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return f"${path}: " if path else ""


def upstream(error: SQSError) -> Refused:
    """An SQS failure as a 502; the problem names SQS's code."""
    return Refused(
        502, f"SQS refused or failed the call: {error}", problems=[{"message": str(error), "code": error.code}]
    )


def operation(
    guard: BearerGuard, summary: str, responses: Mapping[str, Any], *, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An OpenAPI operation: a JSON `body` adds its 400, 413 and 422; `guard` adds the bearer requirement and 401."""
    result: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if body is not None:
        # An empty body reads as {}: it may be left out unless the schema requires a field.
        result["requestBody"] = {"required": bool(body.get("required")), "content": {JSON: {"schema": body}}}
        result["responses"].setdefault("400", error_doc(f"The body is not JSON, or nested over {MAX_JSON_DEPTH} deep."))
        result["responses"].setdefault("413", error_doc(f"The body is larger than {MAX_BODY_BYTES} bytes."))
        result["responses"].setdefault("422", error_doc("The body does not match the schema, or holds NaN/Infinity."))
    return guard.document(result)
