"""S3Payloads: large message bodies through S3, interoperable with the Amazon SQS Extended Client libraries."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from service.aio.lifecycle import Lifecycle
from service.checks import check_range
from service.consumer.batching import BatchHandler
from service.consumer.handler import Handler
from service.consumer.observer import PipelineObserver
from service.errors import ConfigError
from service.payloads.cleanup import DEFAULT_CLEANUP_FLUSH_TIMEOUT_S, PayloadCleanup
from service.payloads.observer import PayloadObserver
from service.payloads.offload import DEFAULT_MAX_BODY_BYTES, DEFAULT_THRESHOLD_BYTES, Offloader
from service.payloads.resolve import PayloadFetcher, PayloadResolver, resolve_batches
from service.payloads.store import S3Store, create_s3_client
from service.publishing.entry import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

# S3 takes objects of up to 5 GiB in one PutObject; a body is held in memory, so a lower ceiling is sane.
MAX_BODY_BYTES_LIMIT = 2 * 1024**3


class S3Payloads(Lifecycle):
    """Large message bodies in S3: resolved on receive, offloaded on send, deleted after their message.

    - `wrap_handler(handler)`: a Handler that reads an offloaded body from S3 before `handler` sees it.
    - `offloader`: the Publisher's offload step (`Publisher(offload=...)`); bodies up to `max_body_bytes`.
    - `observers`: the Server's observers to add; with `delete_payloads`, one deletes a message's payload
      object after SQS deleted the message (SQS first, then S3).

    `start` opens the S3 client (unless one is given; `instrument_client` gets the one it opens) and the
    cleanup task; `shutdown(timeout_s)` flushes the cleanup and closes the client. Start it before the
    Server and the Publisher, shut it down after them.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
        delete_payloads: bool = True,
        legacy_attribute: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        client: S3Client | None = None,
        instrument_client: Callable[[S3Client], None] | None = None,
        observer: PayloadObserver | None = None,
    ) -> None:
        if not bucket:
            raise ConfigError("bucket", bucket, "an S3 bucket name")
        check_range("threshold_bytes", threshold_bytes, 0, MAX_MESSAGE_BYTES)
        check_range("max_body_bytes", max_body_bytes, MAX_MESSAGE_BYTES, MAX_BODY_BYTES_LIMIT)
        self.bucket = bucket
        self.delete_payloads = delete_payloads
        self.store = S3Store(client)
        self._client_given = client is not None
        self._instrument_client = instrument_client
        self._observer = observer or PayloadObserver()
        self.offloader = Offloader(
            self.store,
            bucket=bucket,
            prefix=prefix,
            threshold_bytes=threshold_bytes,
            legacy_attribute=legacy_attribute,
            max_body_bytes=max_body_bytes,
            observer=self._observer,
        )
        self._cleanup = PayloadCleanup(self.store, observer=self._observer) if delete_payloads else None
        self._stack = AsyncExitStack()

    def wrap_handler(self, handler: Handler) -> Handler:
        """`handler`, given the body from S3 for messages that carry a pointer."""
        return PayloadResolver(handler, self.store, observer=self._observer)

    def wrap_batch(self, handler: BatchHandler) -> BatchHandler:
        """A batch handler, given the bodies from S3 of the messages that carry a pointer."""
        return resolve_batches(handler, PayloadFetcher(self.store, self._observer))

    @property
    def observers(self) -> list[PipelineObserver]:
        """The Server's observers this adds: the payload deletion after each SQS deletion, when enabled."""
        return [] if self._cleanup is None else [self._cleanup]

    def stats(self) -> dict[str, int]:
        """Payload objects deleted and orphaned since start."""
        return dict(self._cleanup.counts) if self._cleanup is not None else {"deleted": 0, "orphaned": 0}

    async def start(self) -> None:
        """Open the S3 client (unless given) and start the cleanup task."""
        if not self._client_given:
            client = await self._stack.enter_async_context(create_s3_client())
            if self._instrument_client is not None:
                self._instrument_client(client)
            self.store.client = client
        if self._cleanup is not None:
            await self._cleanup.start()

    async def shutdown(self, timeout_s: float = DEFAULT_CLEANUP_FLUSH_TIMEOUT_S) -> None:
        """Delete the queued payload objects within `timeout_s`, then close the S3 client if it opened it."""
        try:
            if self._cleanup is not None:
                await self._cleanup.shutdown(timeout_s)
        finally:
            await self._stack.aclose()
