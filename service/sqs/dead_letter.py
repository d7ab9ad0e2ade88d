"""Dead-letter sends: received messages copied to their queue's dead-letter queue with SendMessageBatch.

The copy keeps the body, the message attributes and the trace header; on a FIFO queue the group, with the
original message id as deduplication id (a batch sent again after a lost answer is stored once). The reason
goes into one more message attribute when SQS's limit of 10 leaves room for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from service.sqs.batch import BatchResult, call_batch
from service.sqs.urls import is_fifo

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

REASON_ATTRIBUTE = "mq_reject_reason"
MAX_MESSAGE_ATTRIBUTES = 10  # SQS's limit per message
MAX_REASON_CHARS = 1024
# SQS's smallest maximum message size (body and attributes): a copy that would pass it goes without the reason.
_MAX_MESSAGE_BYTES = 262_144
_ATTRIBUTE_VALUE_KEYS = ("DataType", "StringValue", "BinaryValue")
_OPERATION = "SendMessageBatch"


def dead_letter_arn(attributes: Mapping[str, str]) -> str | None:
    """The dead-letter queue's ARN named by a queue's RedrivePolicy attribute, or None without one."""
    try:
        policy = json.loads(attributes.get("RedrivePolicy") or "{}")
    except ValueError:  # SQS validates the policy; a server that did not is treated as having none
        return None
    arn = policy.get("deadLetterTargetArn") if isinstance(policy, dict) else None
    return str(arn) if arn else None


def queue_url_for(queue_url: str, arn: str) -> str:
    """The URL of the queue `arn` names, at the same endpoint as `queue_url`.

    SQS requires a dead-letter queue in the same account and region as its source, so no GetQueueUrl call
    is needed: the account and name of the ARN replace those at the end of the source's URL.
    """
    *_, account, name = arn.split(":")
    base = queue_url.rstrip("/").rsplit("/", 2)[0]
    return f"{base}/{account}/{name}"


def copy_entry(
    entry_id: str, raw: Mapping[str, Any], *, fifo: bool, default_group: str = "dead-letter"
) -> dict[str, Any]:
    """A SendMessageBatch entry that copies received message `raw` (body, attributes, trace header, FIFO group)."""
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": raw["Body"]}
    attributes = raw.get("MessageAttributes")
    if attributes:
        entry["MessageAttributes"] = {
            name: {k: v for k, v in value.items() if k in _ATTRIBUTE_VALUE_KEYS} for name, value in attributes.items()
        }
    system = raw.get("Attributes", {})
    if "AWSTraceHeader" in system:
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}
        }
    if fifo:
        entry["MessageGroupId"] = system.get("MessageGroupId", default_group)
        entry["MessageDeduplicationId"] = raw["MessageId"]
    return entry


def rejection_entry(entry_id: str, raw: Mapping[str, Any], reason: str, *, fifo: bool) -> dict[str, Any]:
    """The copy of a rejected message, with `reason` in the `mq_reject_reason` attribute when it fits."""
    entry = copy_entry(entry_id, raw, fifo=fifo)
    attributes: dict[str, Any] = entry.get("MessageAttributes", {})
    value = reason[:MAX_REASON_CHARS] or "rejected"
    if REASON_ATTRIBUTE not in attributes and len(attributes) >= MAX_MESSAGE_ATTRIBUTES:
        return entry
    if _size(entry) + len(REASON_ATTRIBUTE) + len(value.encode()) + len("String") > _MAX_MESSAGE_BYTES:
        return entry
    entry["MessageAttributes"] = {**attributes, REASON_ATTRIBUTE: {"DataType": "String", "StringValue": value}}
    return entry


async def send_to_dead_letter_queue(
    client: SQSClient, dead_letter_url: str, rejections: Sequence[tuple[Mapping[str, Any], str]]
) -> BatchResult:
    """Send up to 10 (received message, reason) pairs to the dead-letter queue; entry Ids are their indexes."""
    fifo = is_fifo(dead_letter_url)
    entries = [rejection_entry(str(i), raw, reason, fifo=fifo) for i, (raw, reason) in enumerate(rejections)]
    return await call_batch(
        lambda batch: client.send_message_batch(QueueUrl=dead_letter_url, Entries=batch),  # type: ignore[arg-type]
        entries,
        operation=_OPERATION,
    )


def _size(entry: Mapping[str, Any]) -> int:
    """The bytes SQS counts against the message size: body, then each attribute's name, type and value."""
    size = len(str(entry["MessageBody"]).encode())
    for name, value in entry.get("MessageAttributes", {}).items():
        content = value.get("StringValue", value.get("BinaryValue", b""))
        content_bytes = content if isinstance(content, bytes) else str(content).encode()
        size += len(name) + len(str(value.get("DataType", ""))) + len(content_bytes)
    return size
