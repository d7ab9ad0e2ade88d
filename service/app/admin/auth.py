"""The guard of the routes that change or reveal state: same-origin requests only, and the bearer token if set.

A browser cannot be made to forge such a request from another site: the guard refuses what the browser marks
as cross-origin (`Sec-Fetch-Site` other than same-origin or none, an `Origin` other than the admin's own), and a
state change (POST, PUT, DELETE) must come as `application/json` or without a body, which an HTML form cannot
send. Then, with `MQ_ADMIN_TOKEN` configured, `Authorization: Bearer <token>` (the scheme in any case).
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from service.app.admin.errors import Refused, error_doc
from service.app.admin.protocol import Endpoint

SECURITY_SCHEMES = {"bearer": {"type": "http", "scheme": "bearer"}}
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})  # `none`: typed in the address bar, a bookmark


class BearerGuard:
    """Wraps endpoints so only same-origin requests (with the token, when configured) reach them; documents that."""

    def __init__(self, token: str | None) -> None:
        self._expected = None if token is None else token.encode()

    @property
    def enabled(self) -> bool:
        """True when a token is configured."""
        return self._expected is not None

    def __call__(self, endpoint: Endpoint) -> Endpoint:
        """The endpoint behind the guard."""

        async def guarded(request: Request) -> Response:
            try:
                refuse_cross_site(request)
                self._check_token(request)
                if request.method in STATE_CHANGING:
                    require_json_content(request)
            except Refused as refused:
                return refused.response()
            return await endpoint(request)

        return guarded

    def _check_token(self, request: Request) -> None:
        expected = self._expected
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        # Compared in constant time whatever the scheme, so a wrong scheme takes as long as a wrong token.
        matches = hmac.compare_digest(given.strip().encode(), expected)
        if not (matches and scheme.lower() == "bearer"):
            raise Refused(
                401,
                "a valid 'Authorization: Bearer <token>' header is required",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def document(self, operation: dict[str, Any]) -> dict[str, Any]:
        """The operation, with its security requirement and 401 answer when a token is configured, and its 403."""
        operation["responses"]["403"] = error_doc(
            "A browser marked the request cross-origin (Sec-Fetch-Site, Origin): only the admin's own pages may."
        )
        if self.enabled:
            operation["security"] = [{"bearer": []}]
            answer = error_doc("Missing or wrong bearer token (MQ_ADMIN_TOKEN).")
            answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}}
            operation["responses"]["401"] = answer
        return operation

    def components(self) -> dict[str, dict[str, Any]]:
        """The security scheme, when a token is configured."""
        return {"securitySchemes": SECURITY_SCHEMES} if self.enabled else {}


def refuse_cross_site(request: Request) -> None:
    """Raise Refused(403) when the browser says the request comes from another origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site.lower() not in _SAME_ORIGIN_SITES:
        raise Refused(403, f"refused: the browser marks this request {site!r} (Sec-Fetch-Site): not the admin's own")
    origin = request.headers.get("origin")
    if origin is not None and origin.partition("://")[2].lower() != request.headers.get("host", "").lower():
        raise Refused(403, "refused: the request comes from another origin (Origin) than the admin's own")


def require_json_content(request: Request) -> None:
    """Raise Refused(415) unless the request is `application/json`, or has neither body nor content type."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        length = request.headers.get("content-length", "0").strip()
        if length in ("", "0") and "transfer-encoding" not in request.headers:
            return
    elif content_type.partition(";")[0].strip().lower() == "application/json":
        return
    raise Refused(415, "send the request as Content-Type: application/json (or without a body)")
