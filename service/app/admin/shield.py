"""The last line: anything an endpoint did not expect is answered as a JSON 500 with an error id, logged in one line.

Starlette's own handler re-raises after answering (uvicorn then logs a long traceback at ERROR); this answers and
stops there. The line at ERROR names the id and the error; the traceback follows at DEBUG.
"""

from __future__ import annotations

import logging
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.app.admin.errors import error_response

_log = logging.getLogger("service.admin")


class ErrorShield:
    """ASGI middleware: an unexpected exception becomes `{"error": "... (error id ...)"}` with status 500."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; answer for it if it raised before answering."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, watched)
        except Exception as exc:
            error_id = secrets.token_hex(6)
            where = f"{scope.get('method')} {scope.get('path')}"
            _log.error("unexpected error %s answering %s: %r", error_id, where, exc, extra={"error_id": error_id})
            _log.debug("unexpected error %s: traceback", error_id, exc_info=exc, extra={"error_id": error_id})
            if not started:
                message = f"unexpected error (id {error_id}): the service's log has the details"
                await error_response(500, message)(scope, receive, send)
