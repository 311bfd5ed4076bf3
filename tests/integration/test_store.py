"""The store on both back ends (sqlite file, PostgreSQL): migrations, atomic cycles, acks and
snoozes, outbox bookkeeping. Tests taking `state_where` run once per back end; the ones about
the file itself (corrupt, foreign, WAL) are sqlite's own."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.alerting.store import SCHEMA_VERSION, StateError, Store
from bot.records import OutboxDraft, RunRecord
from checks.model import CheckId, Finding, Severity
from checks.rules.lifecycle import CertificateSnapshot, Policy, advance

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def finding(subject: str, severity: Severity = Severity.CRITICAL) -> Finding:
    return Finding(
        check=CheckId.CERT_CHAIN,
        severity=severity,
        subject=subject,
        message="missing intermediate",
        details={"path": ["a", "b"]},
    )


def cycle(store: Store, findings: list[Finding], now: datetime) -> None:
    result = advance(store.load_states(), findings, now=now, policy=Policy())
    drafts = [
        OutboxDraft(id=f"{e.id}#post", event_id=e.id, action="post", text=e.kind.value, keys=e.keys)
        for e in result.events
    ]
    store.record_cycle(
        run=RunRecord(started_at=now, finished_at=now + timedelta(seconds=2), ok=True),
        states=result.states,
        drafts=drafts,
        certificates=[],
        now=now,
    )


def test_fresh_file_is_migrated_and_reopened(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Store.open(path) as store:
        cycle(store, [finding("a"), finding("b", Severity.WARNING)], NOW)
    with Store.open(path) as store:
        open_ = store.open_findings(now=NOW)
        assert [o.finding.subject for o in open_] == ["a", "b"]  # worst first
        assert open_[0].finding.details == {"path": ["a", "b"]}
        run = store.last_run()
        assert run is not None
        assert run.ok
        assert run.started_at == NOW
        assert [m.text for m in store.pending()] == ["opened", "opened"]
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    db.close()


def test_corrupt_file_is_one_line_error_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    junk = b"this is not sqlite at all" * 100
    path.write_bytes(junk)
    with pytest.raises(StateError) as err:
        Store.open(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)
    assert path.read_bytes() == junk


def test_foreign_sqlite_and_newer_schema_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE mine(x)")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="not a relaycheck state file"):
        Store.open(other)
    path = tmp_path / "state.sqlite3"
    with Store.open(path) as store:
        cycle(store, [finding("a")], NOW)
    db = sqlite3.connect(path)
    db.execute("UPDATE schema_version SET version = 99")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="newer relaycheck"):
        Store.open(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM findings").fetchone() == (1,)
    db.close()


def test_acknowledge_and_snooze_show_in_open_findings(state_where: str | Path) -> None:
    with Store.open(state_where) as store:
        cycle(store, [finding("a")], NOW)
        key = finding("a").key
        store.acknowledge(key, "U123", NOW + timedelta(minutes=1))
        store.snooze(key, NOW + timedelta(days=1), "U124", NOW + timedelta(minutes=2))
        (item,) = store.open_findings(now=NOW + timedelta(hours=1))
        assert item.acknowledged_by == "U123"
        assert item.snoozed_until == NOW + timedelta(days=1)
        (later,) = store.open_findings(now=NOW + timedelta(days=2))
        assert later.snoozed_until is None


def test_bad_input_changes_nothing(state_where: str | Path) -> None:
    with Store.open(state_where) as store:
        cycle(store, [finding("a")], NOW)
        with pytest.raises(StateError, match="no finding"):
            store.acknowledge(("cert-chain", "nope", ""), "U1", NOW)
        with pytest.raises(StateError, match="future"):
            store.snooze(finding("a").key, NOW - timedelta(days=1), "U1", NOW)
        assert store.acks() == {}
        assert store.snoozes() == {}
        assert len(store.open_findings(now=NOW)) == 1


def test_outbox_ts_before_delivered_and_duplicate_ids_ignored(state_where: str | Path) -> None:
    with Store.open(state_where, channel="C1") as store:
        draft = OutboxDraft(id="e1#post", event_id="e1", action="post", text="hi")
        store.enqueue([draft], NOW)
        store.enqueue([draft], NOW)  # same id: suppressed
        (msg,) = store.pending()
        assert msg.channel == "C1"
        assert msg.ts is None
        store.record_ts(msg.seq, "1700000000.000100")
        (still,) = store.pending()  # ts recorded, not yet delivered
        assert still.ts == "1700000000.000100"
        assert store.posted_message("e1") == ("C1", "1700000000.000100")
        store.mark_delivered(msg.seq, NOW)
        assert store.pending() == []
        assert store.outbox_counts() == {"delivered": 1, "failed": 0, "pending": 0}


def test_certificates_latest_per_source(state_where: str | Path) -> None:
    def snap(fp: str) -> CertificateSnapshot:
        return CertificateSnapshot(
            source="smarthost/192.0.2.1",
            fingerprint=fp,
            subject="CN=a",
            issuer="CN=ca",
            names=("a",),
            not_after=NOW + timedelta(days=40),
            chain_length=2,
        )

    with Store.open(state_where) as store:
        run = RunRecord(started_at=NOW, finished_at=NOW, ok=True)
        store.record_cycle(run=run, states={}, drafts=[], certificates=[snap("old")], now=NOW)
        later = NOW + timedelta(hours=6)
        store.record_cycle(run=run, states={}, drafts=[], certificates=[snap("new")], now=later)
        assert store.latest_certificates()["smarthost/192.0.2.1"].fingerprint == "new"


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="does not exist"):
        Store.open(tmp_path / "nope" / "s.sqlite3")


def test_a_group_is_acknowledged_whole_or_not_at_all(state_where: str | Path) -> None:
    with Store.open(state_where) as store:
        cycle(store, [finding("mail-a"), finding("mail-b")], NOW)
        known = [finding("mail-a").key, finding("mail-b").key]
        with pytest.raises(StateError):
            store.acknowledge_all([*known, ("cert-expiry", "never-seen", "")], "U1", NOW)
        assert store.acks() == {}  # not even the two known ones
        store.acknowledge_all(known, "U1", NOW)
        assert set(store.acks()) == set(known)
