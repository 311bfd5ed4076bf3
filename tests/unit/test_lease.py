"""The lease decision, over plain numbers: who leads, when a lease may be taken, the fence."""

from __future__ import annotations

from bot.alerting.lease import Fence, Lease, decide, holds, released

L = 30.0


def lease(
    holder: str = "a", *, epoch: int = 1, since: float = 100.0, until: float = 130.0
) -> Lease:
    return Lease(holder=holder, epoch=epoch, since=since, renewed_at=since, expires_at=until)


def test_the_first_replica_to_ask_leads() -> None:
    got = decide(None, me="a", now=100.0, lease_seconds=L)
    assert got == Lease(holder="a", epoch=1, since=100.0, renewed_at=100.0, expires_at=130.0)


def test_a_live_lease_is_renewed_by_its_holder_and_refused_to_others() -> None:
    current = lease()
    renewed = decide(current, me="a", now=120.0, lease_seconds=L)
    assert renewed is not None
    assert (renewed.epoch, renewed.since, renewed.expires_at) == (1, 100.0, 150.0)
    assert decide(current, me="b", now=129.999, lease_seconds=L) is None


def test_an_expired_lease_starts_a_new_epoch_even_for_its_old_holder() -> None:
    current = lease()
    taken = decide(current, me="b", now=130.0, lease_seconds=L)
    assert taken is not None
    assert (taken.holder, taken.epoch, taken.since) == ("b", 2, 130.0)
    back = decide(current, me="a", now=131.0, lease_seconds=L)
    assert back is not None
    assert back.epoch == 2  # a's run from epoch 1 must not commit: it was not leading meanwhile


def test_the_fence_holds_only_for_the_current_unexpired_epoch() -> None:
    current = lease()
    assert holds(current, Fence(holder="a", epoch=1), now=129.0)
    assert not holds(current, Fence(holder="a", epoch=1), now=130.0)
    assert not holds(current, Fence(holder="a", epoch=0), now=110.0)
    assert not holds(current, Fence(holder="b", epoch=1), now=110.0)
    assert not holds(None, Fence(holder="a", epoch=1), now=110.0)


def test_a_released_lease_is_free_at_once() -> None:
    done = released(lease(), now=110.0)
    assert done.expires_at == 110.0
    nxt = decide(done, me="b", now=110.0, lease_seconds=L)
    assert nxt is not None
    assert (nxt.holder, nxt.epoch) == ("b", 2)
