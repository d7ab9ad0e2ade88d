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
        self._ended = False
        self.lost = False

    async def __aenter__(self) -> Lease:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._lease_s / 2, self._start_renewing)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
        if self._renewer is not None:
            self._renewer.cancel()
            # A store client may hold a cancellation back until its call returns: wait at most a lease for it;
            # the loop stops at its next turn either way (`_ended`), and an unfinished renewal only extends a
            # claim that is completed or released next.
            _, pending = await asyncio.wait([self._renewer], timeout=self._lease_s)
            if pending:
                _log.warning("the idempotency lease renewal of %s did not stop within %.1f s", self._key, self._lease_s)

    def _start_renewing(self) -> None:
        if self._ended:
            return
        self._renewer = asyncio.get_running_loop().create_task(self._renew(), name=f"mq-idempotency lease {self._key}")

    async def _renew(self) -> None:
        while not self._ended:
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
