"""Who leads the scheduled checks: the lease decision as pure functions over times.

Why a lease row with an expiry and not a PostgreSQL advisory lock: an advisory lock lives as
long as its session, and a leader that is frozen (SIGSTOP, a VM paused, a partition that keeps
the TCP connection half-open) keeps its session, so nobody could take over until TCP keepalive
gave up, minutes later. A row with `expires_at` is taken over `lease_seconds` after the last
renewal whatever the old leader's connection does, and its `epoch` (raised on every takeover)
fences the old leader: the cycle's transaction commits only while the epoch it started under
is still the current, unexpired one (`holds`). Times come from one clock, the database's
(PostgreSQL `clock_timestamp()`; sqlite, one machine, the local clock), so replicas' clocks
need not agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SCHEDULER = "scheduler"  # the lease's name: one per tenant


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """The lease row: `holder` leads since `since` until `expires_at` (epoch seconds)."""

    holder: str
    epoch: int
    since: float
    renewed_at: float
    expires_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Fence:
    """What a leader's writes carry: the replica and the epoch it was elected in."""

    holder: str
    epoch: int


def decide(current: Lease | None, *, me: str, now: float, lease_seconds: float) -> Lease | None:
    """The lease after `me` asks at `now`, or None when another replica still holds it.

    A holder renewing in time keeps its epoch and `since`; anyone finding it expired (also the
    old holder itself: its in-flight run must not commit) starts a new epoch."""
    if current is not None and current.expires_at > now:
        if current.holder != me:
            return None
        return replace(current, renewed_at=now, expires_at=now + lease_seconds)
    epoch = current.epoch + 1 if current is not None else 1
    return Lease(holder=me, epoch=epoch, since=now, renewed_at=now, expires_at=now + lease_seconds)


def holds(current: Lease | None, fence: Fence, *, now: float) -> bool:
    """Whether a write fenced by `fence` may commit at `now`."""
    return (
        current is not None
        and current.holder == fence.holder
        and current.epoch == fence.epoch
        and current.expires_at > now
    )


def released(current: Lease, *, now: float) -> Lease:
    """A clean stop: the lease ends now, so a follower takes over at its next check."""
    return replace(current, renewed_at=now, expires_at=now)
