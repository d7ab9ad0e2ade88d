"""DynamoDBStore: idempotency records in a DynamoDB table, written with conditional PutItem, UpdateItem, DeleteItem.

The table (`create_table` makes one): partition key `key` (String), no sort key, on-demand capacity, TTL on
`expires_at`. Each item: `key`, `status` (`IN_PROGRESS` or `COMPLETED`), `token` (the claim's), `expires_at`
(Number, epoch seconds). DynamoDB's TTL deletes expired items up to days late, so every condition compares
`expires_at` itself: an expired item counts as absent.
"""

from __future__ import annotations

import asyncio
import math
import time
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from service.idempotency.store import Claim, StoreError
from service.sqs.client import region_for

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

KEY = "key"
STATUS = "status"
TOKEN = "token"
EXPIRES_AT = "expires_at"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
_CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoDBStore:
    """Records in the DynamoDB table `table` (see the module docstring for its schema).

    Give a `client` (an aiobotocore DynamoDB client, which this store then does not close), or let the
    store open one on first use from the environment (AWS_ENDPOINT_URL_DYNAMODB points it elsewhere).
    """

    def __init__(self, table: str, *, client: DynamoDBClient | None = None) -> None:
        self.table = table
        self._client = client
        self._stack = AsyncExitStack()
        self._opening = asyncio.Lock()

    async def claim(self, key: str, token: str, lease_s: float) -> Claim:
        """Put an in-progress item unless a live one exists; on a conflict, say what is there."""
        now = _now()
        try:
            await self._call(
                "put_item",
                Item=_item(key, IN_PROGRESS, token, now + lease_s),
                ConditionExpression="attribute_not_exists(#k) OR #e < :now",
                ExpressionAttributeNames={"#k": KEY, "#e": EXPIRES_AT},
                ExpressionAttributeValues={":now": {"N": str(math.floor(now))}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != _CONDITION_FAILED:
                raise _store_error(exc) from exc
            old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]
            found = old or await self._get(key)
            return Claim.COMPLETED if found and found.get(STATUS, {}).get("S") == COMPLETED else Claim.IN_PROGRESS
        return Claim.CLAIMED

    async def renew(self, key: str, token: str, lease_s: float) -> bool:
        """Move this claim's expiry to `lease_s` from now; False when the item is no longer this claim's."""
        return await self._conditional(
            "update_item",
            Key={KEY: {"S": key}},
            UpdateExpression="SET #e = :e",
            ConditionExpression="#t = :t AND #s = :p",
            ExpressionAttributeNames={"#e": EXPIRES_AT, "#t": TOKEN, "#s": STATUS},
            ExpressionAttributeValues={
                ":e": {"N": str(math.ceil(_now() + lease_s))},
                ":t": {"S": token},
                ":p": {"S": IN_PROGRESS},
            },
        )

    async def complete(self, key: str, token: str, expires_s: float) -> None:
        """Put the completed item, kept for `expires_s`."""
        try:
            await self._call("put_item", Item=_item(key, COMPLETED, token, _now() + expires_s))
        except ClientError as exc:
            raise _store_error(exc) from exc

    async def release(self, key: str, token: str) -> None:
        """Delete this claim's in-progress item (someone else's stays)."""
        await self._conditional(
            "delete_item",
            Key={KEY: {"S": key}},
            ConditionExpression="#t = :t AND #s = :p",
            ExpressionAttributeNames={"#t": TOKEN, "#s": STATUS},
            ExpressionAttributeValues={":t": {"S": token}, ":p": {"S": IN_PROGRESS}},
        )

    async def close(self) -> None:
        """Close the client this store opened."""
        await self._stack.aclose()
        self._client = None

    async def client(self) -> DynamoDBClient:
        """The DynamoDB client, opened on first use."""
        async with self._opening:
            if self._client is None:
                self._client = await self._stack.enter_async_context(create_dynamodb_client())
            client: DynamoDBClient = self._client
        return client

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            answer = await self._call("get_item", Key={KEY: {"S": key}}, ConsistentRead=True)
        except ClientError as exc:
            raise _store_error(exc) from exc
        item: dict[str, Any] | None = answer.get("Item")
        return item

    async def _conditional(self, operation: str, **arguments: Any) -> bool:
        try:
            await self._call(operation, **arguments)
        except ClientError as exc:
            if _code(exc) == _CONDITION_FAILED:
                return False
            raise _store_error(exc) from exc
        return True

    async def _call(self, operation: str, **arguments: Any) -> Any:
        client = self._client or await self.client()
        try:
            return await getattr(client, operation)(TableName=self.table, **arguments)
        except BotoCoreError as exc:
            raise StoreError(f"DynamoDB {self.table}: {exc}") from exc


def create_dynamodb_client() -> AbstractAsyncContextManager[DynamoDBClient]:
    """A DynamoDB client context manager; endpoint and credentials come from the environment.

    Short timeouts and few attempts: a message waits for the store, and a failure only retries the message.
    """
    config = AioConfig(connect_timeout=5, read_timeout=5, retries={"mode": "standard", "total_max_attempts": 2})
    return get_session().create_client("dynamodb", region_name=region_for(), config=config)


async def create_table(table: str, *, client: DynamoDBClient | None = None) -> None:
    """Create the idempotency table (the module docstring's schema), wait until it is active, turn on its TTL."""
    async with AsyncExitStack() as stack:
        dynamodb = client if client is not None else await stack.enter_async_context(create_dynamodb_client())
        await dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        await dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        await dynamodb.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": EXPIRES_AT}
        )


def _now() -> float:
    return time.time()


def _item(key: str, status: str, token: str, expires_at: float) -> dict[str, Any]:
    return {
        KEY: {"S": key},
        STATUS: {"S": status},
        TOKEN: {"S": token},
        EXPIRES_AT: {"N": str(math.ceil(expires_at))},
    }


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _store_error(error: ClientError) -> StoreError:
    return StoreError(f"DynamoDB: {_code(error) or error}")
