"""Record types shared by the alert pipeline's rendering and its storage.

Why a module of their own: the renderers (`bot.alerting.alerts`, `bot.slack.blocks`) produce
and show these records and the store (`bot.alerting.store`) persists them; keeping them here
lets rendering and storage each import this small module instead of each other (no import
circle). Plain frozen data only: no I/O, no Slack, no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from checks.model import Finding
from checks.rules.lifecycle import FindingKey


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxDraft:
    """A message to queue: exactly one Slack call (`post`, `update` or `reply`)."""

    id: str  # unique: the duplicate-suppression key
    event_id: str
    action: str  # "post" | "update" | "reply"
    text: str
    blocks: tuple[dict[str, Any], ...] = ()
    reply_to: str | None = None  # event id whose posted message this one edits or threads under
    channel: str | None = None  # None: the store's default alerts channel
    keys: tuple[FindingKey, ...] = ()  # the findings it is about (for the buttons)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    started_at: datetime
    finished_at: datetime | None
    ok: bool
    job: str = "certificates"
    summary: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenFinding:
    finding: Finding
    opened_at: datetime
    last_seen_at: datetime
    acknowledged_by: str | None = None
    snoozed_until: datetime | None = None
    flapping: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMessage:
    seq: int
    id: str
    event_id: str
    action: str
    channel: str
    text: str
    blocks: tuple[dict[str, Any], ...]
    reply_to: str | None
    attempts: int
    next_attempt_at: datetime | None
    ts: str | None
    created_at: datetime
    attempted_at: datetime | None = None  # a post sent without a clear answer (see delivery)
    failures: int = 0  # 5xx/network failures since the last success (the backoff exponent)


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderRecord:
    """Which replica runs the scheduled checks: since when, its lease's end, whether current."""

    replica: str
    since: datetime
    until: datetime
    epoch: int
    active: bool
