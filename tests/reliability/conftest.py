"""Reliability fixtures: the fault proxy, clients through it, the service in this event loop or as a process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from service.sqs.client import create_client
from tests.support.idempotency import store, store_kind

from .fault_proxy import FaultProxy
from .invariants import Ledger

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient

__all__ = ["store", "store_kind"]


@pytest.fixture
async def proxy(sqs_endpoint: str) -> AsyncIterator[FaultProxy]:
    """A fault proxy on loopback in front of the session's SQS server."""
    async with FaultProxy(sqs_endpoint) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def through_proxy(sqs: SQSClient, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> FaultProxy:
    """Every SQS client created from now on (the service's too) goes through the proxy; `sqs` does not."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
    return proxy


@pytest.fixture
async def proxied_sqs(through_proxy: FaultProxy) -> AsyncIterator[SQSClient]:
    """An aiobotocore SQS client (no botocore retries; SendMessage included) whose calls go through the proxy."""
    async with create_client(kind="botocore") as client:
        yield client


@pytest.fixture
def ledger() -> Ledger:
    """Successes recorded by the handlers and deletions reported by the Server."""
    return Ledger()


# ---- the whole service in this event loop ---------------------------------------------------------------------


# ---- the service as a process: `python -m service run` --------------------------------------------------------
