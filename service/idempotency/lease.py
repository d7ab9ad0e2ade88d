"""The lease of a claim, renewed while the handler runs, so a long handler keeps its key to itself."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType

from service.idempotency.store import Store

_log = logging.getLogger("service.idempotency")


class Lease:
    """`async with Lease(...)`: from half the lease on, renews it every half lease until the block ends.

    A handler that ends before half its lease costs one timer and no task; a longer one gets a renewal task,
    cancelled and awaited when the block ends. A renewal that fails is logged and tried again a half lease
    later; a lost claim (the record is another claim's) is logged and not renewed again.
    """

    def __init__(self, store: Store, key: str, token: str, lease_s: float) -> None:
        self._store = store
        self._key = key
        self._token = token
        self._lease_s = lease_s
        self._timer: asyncio.TimerHandle | None = None
        self._renewer: asyncio.Task[None] | None = None
        self.lost = False

    async def __aenter__(self) -> Lease:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._lease_s / 2, self._start_renewing)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.wait([self._renewer])

    def _start_renewing(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew(), name=f"mq-idempotency lease {self._key}")

    async def _renew(self) -> None:
        while True:
            try:
                held = await self._store.renew(self._key, self._token, self._lease_s)
            except Exception as exc:
                _log.warning("could not renew the idempotency lease of %s: %r", self._key, exc)
            else:
                if not held:
                    self.lost = True
                    _log.warning("the idempotency lease of %s ran out and another consumer claimed it", self._key)
                    return
            await asyncio.sleep(self._lease_s / 2)
