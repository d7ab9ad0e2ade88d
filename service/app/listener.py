"""The admin API's listening socket."""

from __future__ import annotations

import socket

from service.errors import ConfigError


def bind_admin(host: str, port: int) -> socket.socket:
    """The admin API's listening socket, bound before anything starts, so a taken port fails fast."""
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise ConfigError("MQ_ADMIN_HOST/MQ_ADMIN_PORT", f"{host}:{port}", f"an address free to bind ({exc})") from exc
    return sock
