"""Idempotency keys: what makes two messages "the same" for the guard."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from service.consumer.message import Message
from service.errors import ConfigError

KeyFunction = Callable[[Message], str | None]
KEY_NAMES = ("message_id", "deduplication_id", "body")
ATTRIBUTE_PREFIX = "attribute:"
ALLOWED_KEYS = "message_id, deduplication_id, body or attribute:NAME (a message attribute)"


def key_function(key: str | KeyFunction) -> KeyFunction:
    """The function that derives a message's key from a key spec (see ALLOWED_KEYS) or a function of the message.

    A function returns None for a message that has no key. Raises ConfigError for an unknown spec.
    """
    if callable(key):
        return key
    if key == "message_id":
        return _message_id
    if key == "deduplication_id":
        return _deduplication_id
    if key == "body":
        return _body_hash
    name = key.removeprefix(ATTRIBUTE_PREFIX)
    if key.startswith(ATTRIBUTE_PREFIX) and name:
        return _attribute(name)
    raise ConfigError("key", key, ALLOWED_KEYS)


def check_key(name: str, key: str) -> str:
    """`key` when it is a valid key spec; raises ConfigError naming the setting `name` otherwise."""
    try:
        key_function(key)
    except ConfigError as error:
        raise ConfigError(name, key, error.allowed) from error
    return key


def _message_id(message: Message) -> str:
    return f"message_id:{message.message_id}"


def _deduplication_id(message: Message) -> str | None:
    value = message.attributes.get("MessageDeduplicationId")
    return None if value is None else f"deduplication_id:{value}"


def _body_hash(message: Message) -> str:
    return "body:" + hashlib.sha256(message.body.encode()).hexdigest()


def _attribute(name: str) -> KeyFunction:
    def attribute(message: Message) -> str | None:
        value = message.string_attribute(name)
        return None if value is None else f"attribute:{name}:{value}"

    return attribute
