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
# SQS accepts #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF in bodies and attribute values.
# The complement, as a regex class body written in escapes so that it also serves as a JSON Schema pattern:
# the characters text can hold that SQS refuses; lone surrogates (which a JSON escape can produce) come on top.
REFUSED_CHARACTERS = r"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff"
# A message attribute name: dot-separated words of [A-Za-z0-9_-] (no leading, trailing or double dot), at most 256
# characters, not starting with the reserved prefixes.
ATTRIBUTE_NAME = r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*"
MAX_ATTRIBUTE_NAME = 256
RESERVED_PREFIX = r"([Aa][Ww][Ss]|[Aa][Mm][Aa][Zz][Oo][Nn])\."
DATA_TYPE_LABEL = r"(\.[A-Za-z0-9_.\-]+)?"  # a custom label after the type: Number.float
DATA_TYPE = f"(String|Number|Binary){DATA_TYPE_LABEL}"
MAX_DATA_TYPE = 256
# MessageGroupId and MessageDeduplicationId: up to 128 alphanumeric and punctuation characters.
FIFO_TOKEN = r"[A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]{1,128}"

_REFUSED_CHARACTER = re.compile(f"[{REFUSED_CHARACTERS}\\ud800-\\udfff]")
_ATTRIBUTE_NAME = re.compile(ATTRIBUTE_NAME)
_RESERVED_PREFIX = re.compile(RESERVED_PREFIX)
_DATA_TYPE = re.compile(DATA_TYPE)
_FIFO_TOKEN = re.compile(FIFO_TOKEN)


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


class CheckedEntry(dict[str, Any]):
    """An entry (without Id) that passed `checked_entry`."""


def checked_entry(
    entry: Mapping[str, Any], *, fifo: bool, content_based_deduplication: bool, max_message_bytes: int
) -> CheckedEntry:
    """A copy of `entry` without its Id, once it passes every check; raises PublishError otherwise."""
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise invalid("InvalidParameterValue", f"unknown entry fields: {sorted(unknown)}")
    checked = CheckedEntry((key, value) for key, value in entry.items() if key != "Id")
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
        or len(name) > MAX_ATTRIBUTE_NAME
        or not _ATTRIBUTE_NAME.fullmatch(name)
        or _RESERVED_PREFIX.match(name)
    ):
        raise invalid(
            "InvalidParameterValue",
            f"message attribute name {name!r} is invalid: up to 256 of [A-Za-z0-9_.-], not starting with "
            "'AWS.' or 'Amazon.', not starting or ending with '.', no '..'",
        )


def _check_attribute_value(name: str, value: Any) -> None:
    data_type = value.get("DataType") if isinstance(value, Mapping) else None
    if not isinstance(data_type, str) or len(data_type) > MAX_DATA_TYPE or not _DATA_TYPE.fullmatch(data_type):
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
