"""SQS's AWS JSON 1.0 protocol for the lean client: bodies, errors as botocore raises them, MD5 digests.

Errors become the exceptions aiobotocore raises for the same answer (a ClientError with the same `Error.Code`,
botocore's connection errors for the network), so `error_from_exception` and the retry loops classify both
clients alike. The MD5 digests SQS returns for bodies and message attributes are checked against what was
sent or received; a mismatch raises botocore's ChecksumError (receive) or fails the entry (send).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from botocore.exceptions import (
    ChecksumError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

CHECKSUM_CODE = "ChecksumError"


def encode(params: Mapping[str, Any]) -> bytes:
    """The request body: the operation's input as JSON, blobs (bytes) in base64 as botocore sends them."""
    return orjson.dumps(params, default=_blob)


def _blob(value: Any) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot send {type(value).__name__} to SQS")


def decode(body: bytes) -> dict[str, Any]:
    """A response body as a dict (an empty body is an empty answer); botocore's ResponseParserError if not JSON."""
    if not body:
        return {}
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ResponseParserError(f"SQS answered with a body that is not JSON: {body[:200]!r}") from exc
    return parsed if isinstance(parsed, dict) else {}


def client_error(operation: str, status: int, headers: Mapping[str, str], body: bytes) -> ClientError:
    """The ClientError botocore raises for an error answer: code from `x-amzn-query-error`, else `__type`."""
    try:
        parsed = decode(body)
    except ResponseParserError:
        parsed = {}
    error: dict[str, Any] = {"Message": parsed.get("message", parsed.get("Message", "")), "Code": ""}
    code = str(parsed.get("__type", status))
    code = code.split(":", 1)[0].rsplit("#", 1)[-1]
    query_error = headers.get("x-amzn-query-error", "").split(";")
    if len(query_error) == 2 and query_error[0]:
        error["QueryErrorCode"], error["Type"] = code, query_error[1]
        code = query_error[0]
    error["Code"] = code
    response: dict[str, Any] = {"Error": error, "ResponseMetadata": metadata(status, headers)}
    return ClientError(response, operation)  # type: ignore[arg-type]


def metadata(status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    """`ResponseMetadata` as botocore fills it in."""
    result: dict[str, Any] = {"HTTPStatusCode": status, "HTTPHeaders": headers, "RetryAttempts": 0}
    request_id = headers.get("x-amzn-requestid")
    if request_id is not None:
        result["RequestId"] = request_id
    return result


def transport_error(exc: Exception, url: str) -> Exception:
    """The botocore exception aiobotocore raises for the same aiohttp failure."""
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return ConnectionClosedError(error=exc, endpoint_url=url)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        if str(exc).lower().startswith("connect"):
            return ConnectTimeoutError(endpoint_url=url, error=exc)
        return ReadTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        return EndpointConnectionError(endpoint_url=url, error=exc)
    if isinstance(exc, asyncio.TimeoutError):
        return ReadTimeoutError(endpoint_url=url, error=exc)
    return HTTPClientError(error=exc)


def md5_hex(data: bytes) -> str:
    """The hex MD5 digest SQS reports."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def attributes_md5(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """MD5 of message attributes as SQS computes it: per name in order, lengths and values, 1 string / 2 binary."""
    parts: list[bytes] = []
    for name in sorted(attributes):
        value = attributes[name]
        data_type = str(value.get("DataType", ""))
        binary = value.get("BinaryValue")
        if binary is not None:
            content, transport = (binary.encode() if isinstance(binary, str) else bytes(binary)), b"\x02"
        else:
            content, transport = str(value.get("StringValue", "")).encode(), b"\x01"
        for field in (name.encode(), data_type.encode()):
            parts += (struct.pack(">I", len(field)), field)
        parts += (transport, struct.pack(">I", len(content)), content)
    return md5_hex(b"".join(parts))


def received(operation: str, parsed: dict[str, Any]) -> None:
    """Check a ReceiveMessage answer's digests and turn binary attribute values into bytes, as botocore does."""
    for message in parsed.get("Messages", ()):
        body_md5 = message.get("MD5OfBody")
        if body_md5 is not None and body_md5 != (actual := md5_hex(message.get("Body", "").encode())):
            raise ChecksumError(checksum_type="MD5 (body)", expected_checksum=body_md5, actual_checksum=actual)
        attributes = message.get("MessageAttributes")
        if not attributes:
            continue
        for value in attributes.values():
            if "BinaryValue" in value:
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
        attributes_digest = message.get("MD5OfMessageAttributes")
        if attributes_digest is not None and attributes_digest != attributes_md5(attributes):
            raise ChecksumError(
                checksum_type="MD5", expected_checksum=attributes_digest, actual_checksum="of attributes"
            )


def sent(entries: list[Mapping[str, Any]], parsed: dict[str, Any]) -> None:
    """Move a SendMessageBatch entry whose digests do not match what was sent to `Failed` (not the sender's fault)."""
    successful = parsed.get("Successful")
    if not successful:
        return
    by_id = {entry["Id"]: entry for entry in entries}
    kept = []
    for result in successful:
        entry = by_id.get(result.get("Id"))
        if entry is None or _digests_match(entry, result):
            kept.append(result)
            continue
        failed = {"Id": result["Id"], "SenderFault": False, "Code": CHECKSUM_CODE}
        failed["Message"] = "the MD5 digest SQS returned does not match the message sent"
        parsed.setdefault("Failed", []).append(failed)
    parsed["Successful"] = kept


def _digests_match(entry: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    body_md5 = result.get("MD5OfMessageBody")
    if body_md5 is not None and body_md5 != md5_hex(str(entry.get("MessageBody", "")).encode()):
        return False
    attributes_digest = result.get("MD5OfMessageAttributes")
    attributes = entry.get("MessageAttributes")
    return attributes_digest is None or not attributes or attributes_digest == attributes_md5(attributes)
