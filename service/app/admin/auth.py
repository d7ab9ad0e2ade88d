"""The bearer guard: `Authorization: Bearer <MQ_ADMIN_TOKEN>` on the routes that change or reveal state."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.app.admin.errors import error_doc, error_response
from service.app.admin.protocol import Endpoint

SECURITY_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer"}}


class BearerGuard:
    """Wraps endpoints so they need the token, and documents that; with no token configured it lets all through."""

    def __init__(self, token: str | None) -> None:
        self._expected = None if token is None else f"Bearer {token}".encode()

    @property
    def enabled(self) -> bool:
        """True when a token is configured."""
        return self._expected is not None

    def __call__(self, endpoint: Endpoint) -> Endpoint:
        """The endpoint behind the guard."""
        expected = self._expected
        if expected is None:
            return endpoint

        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return error_response(
                    401,
                    "a valid 'Authorization: Bearer <token>' header is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return await endpoint(request)

        return guarded

    def document(self, operation: dict[str, Any]) -> dict[str, Any]:
        """The operation, with its security requirement and 401 answer when a token is configured."""
        if self.enabled:
            operation["security"] = [{"bearer": []}]
            answer = error_doc("Missing or wrong bearer token (MQ_ADMIN_TOKEN).")
            answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
            operation["responses"]["401"] = answer
        return operation

    def components(self) -> dict[str, dict[str, Any]]:
        """The security scheme, when a token is configured."""
        return {"securitySchemes": SECURITY_SCHEMES} if self.enabled else {}
