"""Which replica runs the scheduled checks: a loop that holds, renews or waits for the lease.

Every replica runs one `Leadership`. Every `check_seconds` (a third of the lease) it asks the
store to renew or take the tenant's lease (`Store.try_lead`; the decision itself is the pure
`bot.alerting.lease.decide`). On winning it calls `on_gain(fence)` (serve starts a Scheduler
carrying the fence); on losing (another replica holds the lease, or this one could not renew
before its own lease ran out by the local monotonic clock) it calls `on_loss()` at once, which
stops the scheduler and cancels a run in progress. Even a run that escapes that (the process was
frozen between the check and the write) cannot complete: the store's fence refuses its write.

A leader that died is replaced `lease_seconds` after its last renewal, at the next check of a
follower: within `lease_seconds + check_seconds`. A clean stop releases the lease, so a
follower takes over at its next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from bot.alerting.lease import Fence
from bot.alerting.store import StateError, Store

log = logging.getLogger("relaycheck.leadership")


class Leadership:
    def __init__(
        self,
        store: Store,
        replica: str,
        *,
        lease_seconds: float,
        on_gain: Callable[[Fence], Awaitable[None]],
        on_loss: Callable[[], Awaitable[None]],
        check_seconds: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.replica = replica
        self.lease_seconds = lease_seconds
        self.check_seconds = check_seconds or max(lease_seconds / 3, 0.05)
        self.on_gain = on_gain
        self.on_loss = on_loss
        self.monotonic = monotonic
        self.fence: Fence | None = None
        # time.monotonic() of the last check, done or failed: /readyz's sign of life while
        # another replica leads (the scheduler's own heartbeat only runs on the leader)
        self.last_check: float | None = None
        self._valid_until = 0.0
        self._stop = asyncio.Event()

    @property
    def leading(self) -> bool:
        return self.fence is not None

    async def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                await self.check()
            except Exception:  # our bug: logged; the local lease deadline still applies
                log.exception("leadership check failed inside relaycheck")
                if self.fence is not None and self.monotonic() >= self._valid_until:
                    await self._lose("its lease ran out while checks failed")
            self.last_check = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.check_seconds)

    async def check(self) -> None:
        """One renewal or takeover attempt, and whatever it changes for this replica."""
        asked = self.monotonic()
        try:
            lease = self.store.try_lead(self.replica, lease_seconds=self.lease_seconds)
        except StateError as err:
            log.warning("cannot reach the lease: %s", err)
            if self.fence is not None and self.monotonic() >= self._valid_until:
                await self._lose("its lease ran out while the store was unreachable")
            return
        if lease is not None and lease.holder == self.replica:
            # counted from before the call: this replica believes in its lease no longer than
            # the store does
            self._valid_until = asked + self.lease_seconds
            if self.fence is not None and self.fence.epoch != lease.epoch:
                await self._lose("its lease expired before it was renewed")
            if self.fence is None:
                self.fence = Fence(holder=self.replica, epoch=lease.epoch)
                log.info(
                    "replica %s leads tenant %s (epoch %d)",
                    self.replica,
                    self.store.tenant,
                    lease.epoch,
                )
                await self.on_gain(self.fence)
            return
        if self.fence is not None:
            holder = lease.holder if lease is not None else "another replica"
            await self._lose(f"replica {holder} holds the lease now")

    async def _lose(self, why: str) -> None:
        log.warning(
            "replica %s no longer leads tenant %s: %s", self.replica, self.store.tenant, why
        )
        self.fence = None
        await self.on_loss()

    async def stop(self) -> None:
        """Stop checking; a leader hands its lease back so a follower need not wait it out."""
        self._stop.set()
        if self.fence is not None:
            self.fence = None
            await self.on_loss()
            try:
                self.store.release_lead(self.replica)
            except StateError as err:
                log.warning("could not release the lease (it expires by itself): %s", err)
