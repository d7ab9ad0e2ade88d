"""The lean client against aiobotocore's on a real (moto) server: the same calls give the same answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from aiobotocore.credentials import AioCredentials
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from service.sqs.client import ClientKind, create_client
from service.sqs.lean import LeanSQSClient
from service.sqs.signing import FrozenCredentials, Signer
from tests.support.sqs import QueueFactory

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

# A body with 4-byte UTF-8 characters, and an attribute of every data type (custom types included).
BODY = "clef \U0001d11e, smile \U0001f600, and ascii"
ATTRIBUTES: dict[str, dict[str, Any]] = {
    "s": {"DataType": "String", "StringValue": "caf\u00e9 \U0001f600"},
    "n": {"DataType": "Number", "StringValue": "-12.5e3"},
    "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff\xfe\x01binary"},
    "sc": {"DataType": "String.custom", "StringValue": "x"},
    "bc": {"DataType": "Binary.gzip", "BinaryValue": b"\x1f\x8b"},
}
TRACE = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}}
VOLATILE = {"MessageId", "ReceiptHandle", "ResponseMetadata"}
VOLATILE_ATTRIBUTES = {"SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"}


def stable(value: Any) -> Any:
    """An answer without what differs from call to call (ids, handles, timestamps, request metadata)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE and k not in VOLATILE_ATTRIBUTES}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


async def conversation(client: SQSClient, queue_url: str) -> list[Any]:
    """Every per-message operation, with partial batch failures, an empty receive and a missing queue."""
    answers: list[Any] = []
    entries = [
        {"Id": "full", "MessageBody": BODY, "MessageAttributes": ATTRIBUTES, "MessageSystemAttributes": TRACE},
        {"Id": "plain", "MessageBody": "plain"},
    ]
    answers.append(await client.send_message_batch(QueueUrl=queue_url, Entries=entries))  # type: ignore[arg-type]
    received = await client.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
        VisibilityTimeout=30,
        AttributeNames=["All", "AWSTraceHeader"],
        MessageAttributeNames=["All"],
    )
    messages = sorted(received.get("Messages", []), key=lambda m: m["Body"])
    assert len(messages) == 2, received
    answers.append({**received, "Messages": messages})
    handles = [m["ReceiptHandle"] for m in messages]
    changes: list[dict[str, Any]] = [
        {"Id": f"c{i}", "ReceiptHandle": h, "VisibilityTimeout": 40} for i, h in enumerate(handles)
    ]
    bogus = {"Id": "bogus", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 40}
    answers.append(await client.change_message_visibility_batch(QueueUrl=queue_url, Entries=[*changes, bogus]))  # type: ignore[list-item]
    answers.append(
        await client.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handles[0], VisibilityTimeout=50)
    )
    deletes: list[dict[str, Any]] = [{"Id": f"d{i}", "ReceiptHandle": h} for i, h in enumerate(handles)]
    answers.append(
        await client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[*deletes, {"Id": "bogus", "ReceiptHandle": "not-a-handle"}],  # type: ignore[list-item]
        )
    )
    answers.append(await client.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0))
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "VisibilityTimeout"]
    answers.append(await client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names))  # type: ignore[arg-type]
    with pytest.raises(ClientError) as missing:
        await client.receive_message(QueueUrl=queue_url + "-missing", WaitTimeSeconds=0)
    error = missing.value.response
    answers.append((error["Error"], error["ResponseMetadata"]["HTTPStatusCode"]))
    return answers


async def test_the_lean_client_answers_as_aiobotocore_does(sqs_endpoint: str, make_queue: QueueFactory) -> None:
    results: dict[ClientKind, list[Any]] = {}
    for kind in ("botocore", "lean"):
        async with create_client(kind=kind) as client:
            results[kind] = await conversation(client, await make_queue())
    lean, botocore = stable(results["lean"]), stable(results["botocore"])
    for step, (ours, theirs) in enumerate(zip(lean, botocore, strict=True)):
        assert ours == theirs, f"step {step}"
    received = results["lean"][1]["Messages"]
    assert received[0]["Body"] == BODY
    assert received[0]["MessageAttributes"]["b"]["BinaryValue"] == ATTRIBUTES["b"]["BinaryValue"]
    # System attributes came back (moto drops an AWSTraceHeader sent in a batch: sent anyway, as a parameter).
    assert received[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert [f["Id"] for f in results["lean"][4]["Failed"]] == ["bogus"]  # a partial failure, reported per entry
    assert results["lean"][5].keys() == {"ResponseMetadata"}  # an empty receive: no Messages key, as botocore
    assert results["lean"][7][0]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


@pytest.mark.parametrize("token", [None, "session-token"])
def test_the_signature_is_botocores(token: str | None) -> None:
    """Our cached-key signer and botocore's SigV4Auth sign the same request alike."""
    body = b'{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/1/q","MaxNumberOfMessages":10}'
    request = AWSRequest(
        method="POST",
        url="https://sqs.eu-west-1.amazonaws.com/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "AmazonSQS.ReceiveMessage"},
    )
    SigV4Auth(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), "sqs", "eu-west-1"
    ).add_auth(request)
    stamp = request.headers["X-Amz-Date"]
    import calendar  # noqa: PLC0415
    import time  # noqa: PLC0415

    now_s = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    signer = Signer("sqs.eu-west-1.amazonaws.com", "eu-west-1")
    frozen = FrozenCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ours = signer.headers("AmazonSQS.ReceiveMessage", body, frozen, now_s)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours.get("X-Amz-Security-Token") == token
    # A second call reuses the cached signing key and still agrees.
    assert signer.headers("AmazonSQS.ReceiveMessage", body, frozen, now_s)["Authorization"] == ours["Authorization"]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        (
            {"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"},
            "http://127.0.0.1:4566",
        ),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9324"}, "http://127.0.0.1:9324"),
        ({"AWS_REGION": "eu-west-1"}, "https://sqs.eu-west-1.amazonaws.com"),
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, "https://sqs-fips.us-east-1.amazonaws.com"),
        ({"AWS_USE_DUALSTACK_ENDPOINT": "true", "AWS_REGION": "eu-west-1"}, "https://sqs.eu-west-1.api.aws"),
    ],
)
async def test_the_endpoint_is_botocores(
    environment: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    credentials = AioCredentials("AKIDEXAMPLE", "secret")
    async with (
        create_client(kind="lean", credentials=credentials) as client,
        create_client(kind="botocore") as reference,
    ):
        assert isinstance(client, LeanSQSClient)
        assert client.endpoint_url == expected == reference.meta.endpoint_url
        assert client.region == reference.meta.region_name
