"""Entries for SendMessageBatch: built from `publish` arguments, checked against SQS's rules, measured in bytes.

A message that breaks a rule is refused before anything is sent, with a PublishError whose `sender_fault`
is True and whose `code` is the one SQS would have answered; the other messages of its batch are not affected.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict, Unpack

from service.consumer.message import MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY, MESSAGE_ATTRIBUTE_NAME_ROUTE
from service.errors import PublishError

MAX_BATCH_BYTES = 1_048_576
MAX_MESSAGE_BYTES = 1_048_576
MAX_MESSAGE_ATTRIBUTES = 10
MAX_DELAY_SECONDS = 900

_ENTRY_KEYS = frozenset(
    {"Id", "MessageBody", "MessageAttributes", "DelaySeconds", "MessageGroupId", "MessageDeduplicationId"}
)
# The complement of what SQS accepts: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_REFUSED_CHARACTER = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,256}")
_RESERVED_PREFIX = re.compile(r"(aws|amazon)\.", re.IGNORECASE)
_DATA_TYPE = re.compile(r"(String|Number|Binary)(\.[A-Za-z0-9_.\-]+)?")
# MessageGroupId and MessageDeduplicationId: up to 128 alphanumeric and punctuation characters.
_FIFO_TOKEN = re.compile(r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}")


def invalid(code: str, message: str) -> PublishError:
    """The error for a message refused before sending."""
    return PublishError(code, message, sender_fault=True)


class PublishOptions(TypedDict, total=False):
    """The keyword arguments of `Publisher.publish` besides the body."""

    message_attributes: Mapping[str, Mapping[str, Any]] | None
    route: str | None
    partition_key: str | None
    delay_s: int | None
    group_id: str | None
    deduplication_id: str | None


def build_entry(body: str, **options: Unpack[PublishOptions]) -> dict[str, Any]:
    """A SendMessageBatchRequestEntry (without Id) from `publish` arguments."""
    unknown = set(options) - set(PublishOptions.__annotations__)
    if unknown:
        raise TypeError(f"unexpected publish options: {sorted(unknown)}")
    attributes = {name: dict(value) for name, value in (options.get("message_attributes") or {}).items()}
    for name, key in ((MESSAGE_ATTRIBUTE_NAME_ROUTE, "route"), (MESSAGE_ATTRIBUTE_NAME_PARTITION_KEY, "partition_key")):
        value = options.get(key)
        if value is not None:
            attributes[name] = {"DataType": "String", "StringValue": value}
    entry: dict[str, Any] = {"MessageBody": body}
    optional = {
        "MessageAttributes": attributes or None,
        "DelaySeconds": options.get("delay_s"),
        "MessageGroupId": options.get("group_id"),
        "MessageDeduplicationId": options.get("deduplication_id"),
    }
    entry.update({key: value for key, value in optional.items() if value is not None})
    return entry


def checked_entry(
    entry: Mapping[str, Any], *, fifo: bool, content_based_deduplication: bool, max_message_bytes: int
) -> dict[str, Any]:
    """A copy of `entry` without its Id, once it passes every check; raises PublishError otherwise."""
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise invalid("InvalidParameterValue", f"unknown entry fields: {sorted(unknown)}")
    checked = {key: value for key, value in entry.items() if key != "Id"}
    if "MessageAttributes" in checked:
        checked["MessageAttributes"] = {name: dict(value) for name, value in checked["MessageAttributes"].items()}
    _check_body(checked.get("MessageBody"))
    check_attributes(checked.get("MessageAttributes"))
    _check_delay(checked, fifo=fifo)
    _check_fifo(checked, fifo=fifo, content_based_deduplication=content_based_deduplication)
    check_size(checked, max_message_bytes)
    return checked


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes SQS counts for a message: the body's UTF-8, plus each attribute's name, data type and value."""
    size = len(entry["MessageBody"].encode())
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value["DataType"].encode()) + _value_size(value)
    return size


def check_size(entry: Mapping[str, Any], max_message_bytes: int) -> int:
    """The entry's size in bytes; raises when it exceeds `max_message_bytes`."""
    size = entry_size(entry)
    if size > max_message_bytes:
        raise invalid(
            "InvalidParameterValue", f"message is {size} bytes (body and attributes); at most {max_message_bytes}"
        )
    return size


def check_attributes(attributes: Any) -> None:
    """Raise unless `attributes` is at most 10 well-formed SQS message attributes."""
    if attributes is None:
        return
    if not isinstance(attributes, Mapping):
        raise invalid("InvalidParameterValue", "MessageAttributes must be a mapping of name to value")
    if len(attributes) > MAX_MESSAGE_ATTRIBUTES:
        raise invalid(
            "InvalidParameterValue",
            f"{len(attributes)} message attributes; at most {MAX_MESSAGE_ATTRIBUTES}",
        )
    for name, value in attributes.items():
        _check_attribute_name(name)
        _check_attribute_value(name, value)


def _check_body(body: Any) -> None:
    if not isinstance(body, str):
        raise invalid("InvalidParameterValue", f"MessageBody must be a str, not {type(body).__name__}")
    if not body:
        raise invalid("MissingParameter", "MessageBody must not be empty")
    _check_characters("MessageBody", body)


def _check_characters(what: str, text: str) -> None:
    refused = _REFUSED_CHARACTER.search(text)
    if refused is not None:
        raise invalid(
            "InvalidMessageContents",
            f"{what} contains U+{ord(refused.group()):04X} at index {refused.start()}, which SQS refuses",
        )


def _check_attribute_name(name: Any) -> None:
    if (
        not isinstance(name, str)
        or not _ATTRIBUTE_NAME.fullmatch(name)
        or _RESERVED_PREFIX.match(name)
        or name.startswith(".")
        or name.endswith(".")
        or ".." in name
    ):
        raise invalid(
            "InvalidParameterValue",
            f"message attribute name {name!r} is invalid: up to 256 of [A-Za-z0-9_.-], not starting with "
            "'AWS.' or 'Amazon.', not starting or ending with '.', no '..'",
        )


def _check_attribute_value(name: str, value: Any) -> None:
    data_type = value.get("DataType") if isinstance(value, Mapping) else None
    if not isinstance(data_type, str) or len(data_type) > 256 or not _DATA_TYPE.fullmatch(data_type):
        raise invalid(
            "InvalidParameterValue",
            f"message attribute {name!r}: DataType {data_type!r} is not String, Number or Binary (optionally .custom)",
        )
    assert isinstance(value, Mapping)
    binary = data_type.startswith("Binary")
    wanted = "BinaryValue" if binary else "StringValue"
    if set(value) - {"DataType", wanted}:
        raise invalid(
            "InvalidParameterValue", f"message attribute {name!r} of type {data_type} takes only DataType and {wanted}"
        )
    content = value.get(wanted)
    if not isinstance(content, (bytes, str) if binary else str) or not content:
        raise invalid("InvalidParameterValue", f"message attribute {name!r} needs a non-empty {wanted}")
    if isinstance(content, str) and not binary:
        _check_characters(f"message attribute {name!r}", content)
    if data_type.startswith("Number"):
        _check_number(name, str(content))


def _check_number(name: str, text: str) -> None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise invalid("InvalidParameterValue", f"message attribute {name!r}: {text!r} is not a number")


def _check_delay(entry: dict[str, Any], *, fifo: bool) -> None:
    delay = entry.get("DelaySeconds")
    if delay is None:
        return
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_SECONDS:
        raise invalid("InvalidParameterValue", f"DelaySeconds {delay!r} is not an integer from 0 to 900")
    if fifo and delay:
        raise invalid(
            "InvalidParameterValue", "FIFO queues take no per-message DelaySeconds; set the queue's DelaySeconds"
        )
    if fifo:
        del entry["DelaySeconds"]


def _check_fifo(entry: Mapping[str, Any], *, fifo: bool, content_based_deduplication: bool) -> None:
    group_id = entry.get("MessageGroupId")
    deduplication_id = entry.get("MessageDeduplicationId")
    if fifo and group_id is None:
        raise invalid("MissingParameter", "a FIFO queue needs a MessageGroupId (group_id)")
    if fifo and deduplication_id is None and not content_based_deduplication:
        raise invalid(
            "MissingParameter",
            "this FIFO queue has no content-based deduplication: give a MessageDeduplicationId (deduplication_id)",
        )
    if not fifo and deduplication_id is not None:
        raise invalid("InvalidParameterValue", "MessageDeduplicationId is only for FIFO queues")
    for key, token in (("MessageGroupId", group_id), ("MessageDeduplicationId", deduplication_id)):
        if token is not None and not (isinstance(token, str) and _FIFO_TOKEN.fullmatch(token)):
            raise invalid("InvalidParameterValue", f"{key} {token!r} is not 1-128 letters, digits and punctuation")


def _value_size(value: Mapping[str, Any]) -> int:
    content = value.get("StringValue", value.get("BinaryValue", b""))
    return len(content.encode() if isinstance(content, str) else content)
