"""The Publisher's offload step: a body too large for SQS goes to S3, and the message carries a pointer to it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from service.consumer.message import S3Payload
from service.errors import PublishError
from service.payloads.observer import PayloadObserver
from service.payloads.pointer import (
    LEGACY_SIZE_ATTRIBUTE,
    SIZE_ATTRIBUTE,
    PayloadError,
    pointer_body,
    size_attribute_of,
)
from service.payloads.store import S3Store
from service.publishing.entry import MAX_MESSAGE_ATTRIBUTES, entry_size, invalid

DEFAULT_THRESHOLD_BYTES = 262_144
DEFAULT_MAX_BODY_BYTES = 32 * 1_048_576
# One attribute is kept for the size marker, as the reference libraries do.
MAX_OFFLOADED_ATTRIBUTES = MAX_MESSAGE_ATTRIBUTES - 1


class Offloader:
    """Stores a checked SendMessage entry's body in S3 when body and attributes pass `threshold_bytes` (0: always).

    The entry that is sent instead has the pointer as its body and the size attribute (`ExtendedPayloadSize`,
    or `SQSLargePayloadSize` with `legacy_attribute`), as the Amazon SQS Extended Client libraries write
    them; the object key is `prefix` + a UUID. Such a message keeps at most 9 attributes of its own.
    """

    def __init__(
        self,
        store: S3Store,
        *,
        bucket: str,
        prefix: str = "",
        threshold_bytes: int = DEFAULT_THRESHOLD_BYTES,
        legacy_attribute: bool = False,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        observer: PayloadObserver | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.threshold_bytes = threshold_bytes
        self.max_body_bytes = max_body_bytes
        self._store = store
        self._attribute = LEGACY_SIZE_ATTRIBUTE if legacy_attribute else SIZE_ATTRIBUTE
        self._legacy = legacy_attribute
        self._observer = observer or PayloadObserver()

    def needed(self, entry: Mapping[str, Any]) -> bool:
        """True when this entry's body goes to S3; raises PublishError when it uses a reserved attribute name."""
        reserved = size_attribute_of(entry.get("MessageAttributes") or {})
        if reserved is not None:
            raise invalid("InvalidParameterValue", f"message attribute {reserved!r} is reserved for S3 payloads")
        return self.threshold_bytes == 0 or entry_size(entry) > self.threshold_bytes

    async def __call__(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The entry to send: `entry` itself when small enough, else a pointer to its body, stored in S3."""
        if not self.needed(entry):
            return entry
        attributes: dict[str, Any] = entry.get("MessageAttributes") or {}
        if len(attributes) > MAX_OFFLOADED_ATTRIBUTES:
            raise invalid(
                "InvalidParameterValue",
                f"{len(attributes)} message attributes; at most {MAX_OFFLOADED_ATTRIBUTES} on a message whose body "
                "goes to S3 (the size attribute takes the tenth)",
            )
        body = entry["MessageBody"].encode()
        key = f"{self.prefix}{uuid.uuid4()}"
        try:
            await self._store.put(self.bucket, key, body)
        except PayloadError as error:
            raise PublishError(
                error.code or "S3Error", str(error), sender_fault=False, operation="PutObject"
            ) from error
        self._observer.offloaded(S3Payload(self.bucket, key, len(body)))
        return _pointer_entry(
            entry, attributes, pointer_body(self.bucket, key, legacy=self._legacy), self._attribute, body
        )


def _pointer_entry(
    entry: dict[str, Any], attributes: dict[str, Any], pointer: str, size_attribute: str, body: bytes
) -> dict[str, Any]:
    sent = {
        **entry,
        "MessageBody": pointer,
        "MessageAttributes": {**attributes, size_attribute: {"DataType": "Number", "StringValue": str(len(body))}},
    }
    if "MessageGroupId" in entry and "MessageDeduplicationId" not in entry:
        # Content-based deduplication would hash the pointer, which is new on every send: hash the body instead.
        sent["MessageDeduplicationId"] = hashlib.sha256(body).hexdigest()
    return sent
