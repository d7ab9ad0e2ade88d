"""call_batch: every entry gets an outcome, and what failed for a passing reason is sent again.

A real SQS server cannot be made to leave an entry out of its answer, so these tests call `call_batch`
with a scripted call function instead of a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.aio.backoff import Backoff
from service.sqs.batch import call_batch

NO_WAIT = Backoff(base_s=0.0, max_s=0.0)


class Scripted:
    """Answers each call with the next scripted answer, given the entries it was sent."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[list[str]] = []

    async def __call__(self, entries: list[dict[str, Any]]) -> Mapping[str, Any]:
        ids = [entry["Id"] for entry in entries]
        self.sent.append(ids)
        answer: Mapping[str, Any] = self.answers.pop(0)(ids)
        return answer


def ok(*ids: str) -> dict[str, Any]:
    return {"Successful": [{"Id": i} for i in ids]}


async def test_an_entry_missing_from_the_answer_is_sent_again() -> None:
    call = Scripted(lambda ids: ok(ids[0]), lambda ids: ok(*ids))
    result = await call_batch(call, [{"Id": "0"}, {"Id": "1"}], operation="Op", backoff=NO_WAIT)
    assert call.sent == [["0", "1"], ["1"]]
    assert set(result.succeeded) == {"0", "1"}
    assert result.failed == {}
    assert result.retried == 1


async def test_an_entry_never_answered_fails_as_missing() -> None:
    call = Scripted(*[lambda ids: ok()] * 3)
    result = await call_batch(call, [{"Id": "0"}], operation="Op", attempts=3, backoff=NO_WAIT)
    assert len(call.sent) == 3
    assert result.succeeded == {}
    assert (result.failed["0"].code, result.failed["0"].sender_fault) == ("MissingResult", False)


async def test_a_sender_fault_is_final() -> None:
    failed = {"Id": "0", "Code": "InvalidParameterValue", "Message": "no", "SenderFault": True}
    call = Scripted(lambda ids: {"Successful": [], "Failed": [failed]})
    result = await call_batch(call, [{"Id": "0"}], operation="Op", backoff=NO_WAIT)
    assert call.sent == [["0"]]
    assert result.failed["0"].code == "InvalidParameterValue"
    assert result.retried == 0
