"""Shared by the operator's route modules: JSON bodies checked against a schema, error answers, OpenAPI pieces."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.app.admin.problems import describe_error
from service.errors import SQSError

Endpoint = Callable[[Request], Awaitable[Response]]
Guard = Callable[[Endpoint], Endpoint]

MAX_BODY_BYTES = 64 * 1024


class Refused(Exception):
    """A request refused with a 4xx (or an upstream 5xx) and a JSON message."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.details = details

    def response(self) -> Response:
        """The JSON answer."""
        return JSONResponse({"error": str(self), **self.details}, status_code=self.status)


async def read_body(request: Request, schema: dict[str, Any]) -> dict[str, Any]:
    """The request's JSON object checked against `schema`; an empty body is `{}`. Raises Refused."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise Refused(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise Refused(400, f"the request body is not valid JSON: {exc}") from exc
    problems = [_where(error) + describe_error(error) for error in Draft202012Validator(schema).iter_errors(data)]
    if problems:
        raise Refused(422, "invalid request: " + "; ".join(sorted(problems)))
    assert isinstance(data, dict)  # the schemas here all describe objects
    return data


def _where(error: ValidationError) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)
    return f"${path}: " if path else ""


def upstream(error: SQSError) -> Refused:
    """An SQS failure as a 502 naming SQS's code."""
    return Refused(502, f"SQS refused or failed the call: {error}", code=error.code)


def json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """An OpenAPI response with a JSON body."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR_SCHEMA: dict[str, Any] = {"$ref": "#/components/schemas/Error"}


def operation(
    summary: str, responses: dict[str, Any], *, protected: bool, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An OpenAPI operation; `protected` adds the bearer requirement and its 401."""
    result: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if body is not None:
        result["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
        result["responses"].setdefault("400", json_content(ERROR_SCHEMA, "The body is not JSON."))
        result["responses"].setdefault("413", json_content(ERROR_SCHEMA, "The body is too large."))
        result["responses"].setdefault("422", json_content(ERROR_SCHEMA, "The body does not match the schema."))
    if protected:
        result["security"] = [{"bearer": []}]
        result["responses"]["401"] = json_content(ERROR_SCHEMA, "Missing or wrong bearer token (MQ_ADMIN_TOKEN).")
    return result
