"""JSON error responses: one shape (`{"error": ..., "problems": [...]}`) for every error the admin API answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.app.admin.openapi import RouteGroup, json_response, ref

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One thing wrong with a request: where (`path` in the request, or the batch `index`) and what.",
    "additionalProperties": False,
    "required": ["message"],
    "properties": {
        "message": {"type": "string"},
        "path": {"type": "string"},
        "index": {"type": "integer"},
        "code": {"type": "string"},
    },
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "problems": {"type": "array", "items": ref("Problem")}},
}


class _AsciiJSONResponse(JSONResponse):
    """JSON in ASCII: an error may quote the request, and a request's JSON may hold lone surrogates (not UTF-8)."""

    def render(self, content: Any) -> bytes:
        """The body."""
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def error_response(
    status: int,
    message: str,
    *,
    problems: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """`{"error": message, "problems": [...]}` with `status`."""
    content: dict[str, Any] = {"error": message}
    if problems is not None:
        content["problems"] = [dict(problem) for problem in problems]
    return _AsciiJSONResponse(content, status_code=status, headers=headers)


class Refused(Exception):
    """A request refused with a 4xx (or an upstream 5xx) and a JSON message."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        problems: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems
        self.headers = headers

    def response(self) -> Response:
        """The JSON answer, in the admin API's one error shape."""
        return error_response(self.status, str(self), problems=self.problems, headers=self.headers)


def error_doc(description: str) -> dict[str, Any]:
    """The OpenAPI response object of an error."""
    return json_response(description, ref("Error"))


async def _http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 (and any other HTTPException) as JSON, keeping headers such as Allow."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


EXCEPTION_HANDLERS = {HTTPException: _http_error}


def errors_group() -> RouteGroup:
    """No routes: the error schemas every other group refers to."""
    return RouteGroup(components={"schemas": {"Error": ERROR_SCHEMA, "Problem": PROBLEM_SCHEMA}})
