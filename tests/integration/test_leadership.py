"""The leadership loop on a real store: one leader, takeover after a freeze, the frozen one
stepping down at its next check, a clean stop handing the lease over at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.alerting.lease import Fence
from bot.alerting.store import Store
from bot.runtime.leadership import Leadership


class Events:
    def __init__(self) -> None:
        self.log: list[str] = []

    def pair(self, name: str) -> tuple:  # type: ignore[type-arg]
        async def gain(fence: Fence) -> None:
            self.log.append(f"{name} gains {fence.epoch}")

        async def loss() -> None:
            self.log.append(f"{name} loses")

        return gain, loss


async def test_one_leader_takeover_and_step_down(state_where: str | Path) -> None:
    events = Events()
    with (
        Store.open(state_where, tenant="contoso") as one,
        Store.open(state_where, tenant="contoso") as two,
    ):
        gain_a, loss_a = events.pair("a")
        gain_b, loss_b = events.pair("b")
        a = Leadership(one, "a", lease_seconds=0.5, on_gain=gain_a, on_loss=loss_a)
        b = Leadership(two, "b", lease_seconds=0.5, on_gain=gain_b, on_loss=loss_b)
        await a.check()
        await b.check()
        assert events.log == ["a gains 1"]
        assert (a.leading, b.leading) == (True, False)
        await asyncio.sleep(0.6)  # a is "frozen": it did not renew
        await b.check()
        assert events.log[-1] == "b gains 2"
        await a.check()  # a wakes: it steps down before doing anything else
        assert events.log[-1] == "a loses"
        leader = one.leader()
        assert leader is not None
        assert (leader.replica, leader.active) == ("b", True)
        await b.stop()  # a clean stop: the lease is free at once
        assert events.log[-1] == "b loses"
        await a.check()
        assert events.log[-1] == "a gains 3"
        await a.stop()
