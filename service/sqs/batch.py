"""One SQS batch call (delete, change visibility, send) with retries of what failed for a passing reason."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from service.aio.backoff import Backoff
from service.errors import SQSError

BatchCall = Callable[[list[dict[str, Any]]], Awaitable[Mapping[str, Any]]]

DEFAULT_BATCH_ATTEMPTS = 5
DEFAULT_BATCH_BACKOFF = Backoff(base_s=0.2, max_s=5.0)


# What SQS answers for a receipt handle it no longer honours (deleted, purged, or redelivered elsewhere).
STALE_HANDLE_CODES = frozenset(
    {"ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight"}
)


def is_stale_handle(error: SQSError) -> bool:
    """True when SQS refused a receipt handle as no longer valid (its message's lease is lost)."""
    return error.code in STALE_HANDLE_CODES or (
        error.code == "InvalidParameterValue" and "receipt handle" in error.sqs_message.lower()
    )


@dataclass
class BatchResult:
    """Per-entry outcome of a batch call, keyed by entry Id."""

    succeeded: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    failed: dict[str, SQSError] = field(default_factory=dict)
    retried: int = 0  # entries sent more than once


def error_from_exception(exc: Exception, operation: str) -> SQSError:
    """An SQSError for a failed call: a ClientError keeps SQS's code; a transport error is transient."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        return SQSError(
            str(error.get("Code", "Unknown")),
            str(error.get("Message", exc)),
            sender_fault=400 <= int(status) < 500 and error.get("Type") != "Receiver",
            operation=operation,
        )
    return SQSError(type(exc).__name__, str(exc), sender_fault=False, operation=operation)


async def call_batch(
    call: BatchCall,
    entries: Sequence[dict[str, Any]],
    *,
    operation: str,
    attempts: int = DEFAULT_BATCH_ATTEMPTS,
    backoff: Backoff = DEFAULT_BATCH_BACKOFF,
) -> BatchResult:
    """Call `call` with `entries` (each with a unique Id); retry transient failures of the call or of entries.

    Returns every entry's outcome: succeeded with SQS's result entry, or failed with the last error (an entry
    SQS left out of its answer fails as "MissingResult" and is tried again, like any transient failure).
    """
    result = BatchResult()
    pending = {entry["Id"]: entry for entry in entries}
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(backoff.delay_s(attempt - 1))
            result.retried += len(pending)
        try:
            response = await call(list(pending.values()))
        except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
            error = error_from_exception(exc, operation)
            result.failed.update(dict.fromkeys(pending, error))
            if not error.transient:
                return result
            continue
        for entry in response.get("Successful", []):
            result.succeeded[entry["Id"]] = entry
            result.failed.pop(entry["Id"], None)
            pending.pop(entry["Id"], None)
        for entry in response.get("Failed", []):
            result.failed[entry["Id"]] = SQSError.from_entry(entry, operation)
        for entry_id in pending:
            if entry_id not in result.failed:  # in neither list: try it again
                result.failed[entry_id] = SQSError(
                    "MissingResult", "SQS reported no result for this entry", sender_fault=False, operation=operation
                )
        pending = {entry_id: entry for entry_id, entry in pending.items() if result.failed[entry_id].transient}
        if not pending:
            break
    return result
