"""A lean async SQS client for the per-message calls: the AWS JSON 1.0 protocol over one aiohttp session.

botocore keeps what it does well: the credential chain (environment, profile, web identity, container and
EKS pod identity) and its refreshing, and endpoint and region resolution (`AWS_ENDPOINT_URL_SQS`,
`AWS_ENDPOINT_URL`, FIPS and dual-stack settings), read once from a botocore client built at start-up.
What costs CPU on every call (parameter validation, serialisation, the signer's generality, user-agent
building, event hooks, parsing) is replaced by a JSON dump, a cached-key SigV4 signature and a JSON load.

The coroutine methods take the same keyword arguments and return the same dicts as aiobotocore's; errors
are raised as the same botocore exceptions. `on_call` stands in for botocore's event hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import ClientError, NoCredentialsError

from service.sqs import protocol
from service.sqs.signing import CONTENT_TYPE, FrozenCredentials, Signer

CallFinished = Callable[[int, Mapping[str, Any] | None, BaseException | None], None]
"""Called when a call ends: (HTTP status or 0, the parsed answer or error dict, the exception raised or None)."""
CallStarted = Callable[[str, Mapping[str, Any]], CallFinished | None]
"""Called as a call starts with (operation, keyword arguments); may return a callback for its end."""

_USER_AGENT = "mq-service-lean-sqs"


class LeanSQSClient:
    """SQS's per-message operations; an async context manager that closes its connection pool."""

    def __init__(
        self,
        *,
        endpoint_url: str,
        region: str,
        credentials: Any,
        max_pool_connections: int = 20,
        read_timeout_s: float = 60.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self._url = self.endpoint_url + "/"
        self._credentials = credentials  # botocore's (Aio)Credentials or (Aio)RefreshableCredentials, or None
        parts = urlsplit(self.endpoint_url)
        self._signer = Signer(parts.netloc, region, path=parts.path + "/")
        self._hooks: list[CallStarted] = []
        self._pool_size = max_pool_connections
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout_s, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=12)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            auto_decompress=False,
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
            skip_auto_headers=("Accept",),
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def on_call(self, callback: CallStarted) -> None:
        """Call `callback(operation, params)` as every call starts; what it returns is called when the call ends."""
        self._hooks.append(callback)

    async def receive_message(self, **params: Any) -> dict[str, Any]:
        """ReceiveMessage; body and attribute digests checked, binary attribute values as bytes."""
        return await self._call("ReceiveMessage", params)

    async def delete_message_batch(self, **params: Any) -> dict[str, Any]:
        """DeleteMessageBatch."""
        return await self._call("DeleteMessageBatch", params)

    async def change_message_visibility_batch(self, **params: Any) -> dict[str, Any]:
        """ChangeMessageVisibilityBatch."""
        return await self._call("ChangeMessageVisibilityBatch", params)

    async def change_message_visibility(self, **params: Any) -> dict[str, Any]:
        """ChangeMessageVisibility."""
        return await self._call("ChangeMessageVisibility", params)

    async def send_message_batch(self, **params: Any) -> dict[str, Any]:
        """SendMessageBatch; an entry whose digests do not match what was sent is reported Failed."""
        return await self._call("SendMessageBatch", params)

    async def get_queue_attributes(self, **params: Any) -> dict[str, Any]:
        """GetQueueAttributes."""
        return await self._call("GetQueueAttributes", params)

    async def _call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if not self._hooks:
            return await self._send(operation, params)
        finishers = [finish for hook in self._hooks if (finish := hook(operation, params)) is not None]
        try:
            parsed = await self._send(operation, params)
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            for finish in finishers:
                finish(status, exc.response, None)
            raise
        except BaseException as exc:
            for finish in finishers:
                finish(0, None, exc)
            raise
        status = int(parsed["ResponseMetadata"]["HTTPStatusCode"])
        for finish in finishers:
            finish(status, parsed, None)
        return parsed

    async def _send(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        body = protocol.encode(params)
        headers = self._signer.headers("AmazonSQS." + operation, body, await self._frozen_credentials())
        session = self._session
        if session is None:
            raise RuntimeError("the lean SQS client is not open (use it as an async context manager)")
        try:
            async with session.post(self._url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
                answer_headers = {k.decode().lower(): v.decode() for k, v in response.raw_headers}
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise protocol.transport_error(exc, self._url) from exc
        if status >= 300:
            raise protocol.client_error(operation, status, answer_headers, raw)
        parsed = protocol.decode(raw)
        if operation == "ReceiveMessage":
            protocol.received(operation, parsed)
        elif operation == "SendMessageBatch":
            protocol.sent(params.get("Entries", []), parsed)
        parsed["ResponseMetadata"] = protocol.metadata(status, answer_headers)
        return parsed

    async def _frozen_credentials(self) -> FrozenCredentials:
        # Asked for per call: botocore's refreshable credentials refresh themselves ahead of expiry, so a
        # rotated key is used from the next call on.
        if self._credentials is None:
            raise NoCredentialsError()
        frozen = await self._credentials.get_frozen_credentials()
        return FrozenCredentials(frozen.access_key, frozen.secret_key, frozen.token)


async def open_lean_client(
    queue_url: str | None,
    *,
    region: str,
    config: AioConfig,
    session: AioSession,
    credentials: Any = None,
    max_pool_connections: int = 20,
    read_timeout_s: float = 60.0,
    connect_timeout_s: float = 10.0,
) -> LeanSQSClient:
    """A LeanSQSClient (not yet entered) with the endpoint, region and credentials botocore resolves."""
    async with session.create_client("sqs", region_name=region, config=config) as resolver:
        endpoint_url, resolved_region = resolver.meta.endpoint_url, resolver.meta.region_name
    if credentials is None:
        credentials = await session.get_credentials()
    return LeanSQSClient(
        endpoint_url=endpoint_url,
        region=resolved_region or region,
        credentials=credentials,
        max_pool_connections=max_pool_connections,
        read_timeout_s=read_timeout_s,
        connect_timeout_s=connect_timeout_s,
    )


__all__ = ["CONTENT_TYPE", "CallFinished", "CallStarted", "LeanSQSClient", "open_lean_client"]
