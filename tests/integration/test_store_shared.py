"""What sharing a store means, on both back ends: tenants kept apart, the leadership lease and
its fence, outbox claims between two replicas, and the migration of an old state file."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from bot.alerting import schema
from bot.alerting.lease import Fence
from bot.alerting.store import SCHEMA_VERSION, LeaseLost, StateError, Store
from bot.records import OutboxDraft, RunRecord
from checks.model import CheckId, Finding, Severity
from checks.rules.lifecycle import Policy, advance
from tests.fakes.postgres import PostgresServer

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LEGACY = Path(__file__).resolve().parents[1] / "data" / "state-schema3.sql"


def finding(subject: str, check: CheckId = CheckId.CERT_CHAIN) -> Finding:
    return Finding(check=check, severity=Severity.CRITICAL, subject=subject, message="broken")


def cycle(store: Store, findings: list[Finding], now: datetime, fence: Fence | None = None) -> None:
    result = advance(store.load_states(), findings, now=now, policy=Policy())
    drafts = [
        OutboxDraft(id=f"{e.id}#post", event_id=e.id, action="post", text=e.kind.value, keys=e.keys)
        for e in result.events
    ]
    store.record_cycle(
        run=RunRecord(started_at=now, finished_at=now, ok=True),
        states=result.states,
        drafts=drafts,
        accepted_domains={"contoso.com"},
        now=now,
        fence=fence,
    )


def subjects(store: Store) -> list[str]:
    return sorted(o.finding.subject for o in store.open_findings(now=NOW))


def test_two_tenants_on_one_store_keep_separate_findings(state_where: str | Path) -> None:
    with Store.open(state_where, tenant="contoso") as contoso:
        cycle(contoso, [finding("mail1"), finding("mail2")], NOW)
    with Store.open(state_where, tenant="fabrikam") as fabrikam:
        # fabrikam's first run sees none of contoso's findings, so it resolves none of them
        cycle(fabrikam, [finding("smtp.fabrikam")], NOW + timedelta(hours=1))
        fabrikam.acknowledge(finding("smtp.fabrikam").key, "U0FAB", NOW)
        with pytest.raises(StateError, match="no finding"):
            fabrikam.acknowledge(finding("mail1").key, "U0FAB", NOW)  # not fabrikam's
        assert subjects(fabrikam) == ["smtp.fabrikam"]
        assert fabrikam.outbox_counts()["pending"] == 1
        contoso = fabrikam.for_tenant("contoso")
        assert subjects(contoso) == ["mail1", "mail2"]
        assert contoso.acks() == {}
        assert [m.text for m in contoso.pending()] == ["opened", "opened"]
        assert contoso.last_run() is not None
        assert sorted(fabrikam.tenants()) == ["contoso", "fabrikam"]
        # a contoso run that still sees both changes nothing for fabrikam
        cycle(contoso, [finding("mail1")], NOW + timedelta(hours=2))
        assert subjects(contoso) == ["mail1"]
        assert subjects(fabrikam) == ["smtp.fabrikam"]
        assert fabrikam.accepted_domains() == frozenset({"contoso.com"})


def test_schema3_state_file_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "relaycheck.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(LEGACY.read_text(encoding="utf-8"))  # as relaycheck 0.1 left it
    db.close()
    with Store.open(path, tenant="contoso") as store:
        found = store.open_findings(now=NOW + timedelta(hours=1))
        assert [o.finding.subject for o in found] == ["smarthost", "contoso.com"]
        assert found[0].acknowledged_by == "U0ALICE"
        assert found[1].snoozed_until == NOW + timedelta(days=7)
        assert store.outbox_counts() == {"delivered": 1, "failed": 0, "pending": 1}
        assert store.posted_message(found[0].finding.key and store.pending()[0].event_id) is None
        assert store.accepted_domains() == frozenset({"contoso.com", "contoso.co.jp"})
        assert store.latest_certificates()["smarthost/192.0.2.25"].fingerprint == "ab" * 32
        assert store.last_job_run("digest") == NOW
        run = store.last_run()
        assert run is not None
        assert run.summary == {"findings": 2, "events": 2}
        # the queue keeps its numbers: a new message goes after the old ones
        store.enqueue([OutboxDraft(id="new#post", event_id="new", action="post", text="x")], NOW)
        assert [m.seq for m in store.pending()] == [2, 3]
        assert store.for_tenant("fabrikam").open_findings(now=NOW) == []
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (
        "0003_delivery_attempts",
    )
    db.close()


def test_migrations_build_the_schema_the_queries_use(state_where: str | Path) -> None:
    with Store.open(state_where) as store:
        engine = store._b.engine
        inspector = sa.inspect(engine)
        for table in schema.metadata.sorted_tables:
            live = {c["name"] for c in inspector.get_columns(table.name)}
            assert live == {c.name for c in table.columns}, table.name
            pk = set(inspector.get_pk_constraint(table.name)["constrained_columns"])
            assert pk == {c.name for c in table.primary_key.columns}, table.name


def test_the_lease_is_taken_over_only_after_it_expired(state_where: str | Path) -> None:
    with (
        Store.open(state_where, tenant="contoso") as a,
        Store.open(state_where, tenant="contoso") as b,
    ):
        first = a.try_lead("a", lease_seconds=0.6)
        assert first is not None
        assert first.holder == "a"
        held = b.try_lead("b", lease_seconds=0.6)
        assert held is not None
        assert held.holder == "a"  # still a's
        renewed = a.try_lead("a", lease_seconds=0.6)
        assert renewed is not None
        assert renewed.epoch == first.epoch
        assert renewed.since == first.since
        time.sleep(0.7)
        taken = b.try_lead("b", lease_seconds=0.6)
        assert taken is not None
        assert (taken.holder, taken.epoch) == ("b", first.epoch + 1)
        leader = a.leader()
        assert leader is not None
        assert (leader.replica, leader.active) == ("b", True)
        assert a.for_tenant("fabrikam").leader() is None  # each tenant elects its own
        b.release_lead("b")
        again = a.try_lead("a", lease_seconds=0.6)
        assert again is not None
        assert again.holder == "a"


def test_a_leader_that_lost_its_lease_writes_nothing(state_where: str | Path) -> None:
    with (
        Store.open(state_where, tenant="contoso") as a,
        Store.open(state_where, tenant="contoso") as b,
    ):
        lease = a.try_lead("a", lease_seconds=0.3)
        assert lease is not None
        fence = Fence(holder="a", epoch=lease.epoch)
        cycle(a, [finding("mail1")], NOW, fence=fence)  # leads: written
        time.sleep(0.4)
        assert b.try_lead("b", lease_seconds=30) is not None
        with pytest.raises(LeaseLost, match="no longer leads"):
            cycle(a, [finding("mail1"), finding("mail2")], NOW + timedelta(hours=1), fence=fence)
        with pytest.raises(LeaseLost):
            a.mark_job("certificates", NOW + timedelta(hours=1), fence=fence)
        assert subjects(b) == ["mail1"]  # the stale run left no trace
        assert b.outbox_counts()["pending"] == 1
        assert b.last_job_run("certificates") == NOW


def test_two_replicas_never_deliver_the_same_message(state_where: str | Path) -> None:
    drafts = [
        OutboxDraft(id=f"e{i}#post", event_id=f"e{i}", action="post", text=f"{i}") for i in range(3)
    ]
    with Store.open(state_where, channel="C1") as a, Store.open(state_where, channel="C1") as b:
        a.enqueue(drafts, NOW)
        with a.claim_next("a") as mine:
            assert mine.message is not None
            assert mine.message.text == "0"
            with b.claim_next("b") as theirs:
                assert theirs.message is None
                assert theirs.busy  # the head is a's: b waits, order is kept
            a.record_ts(mine.message.seq, "1.1")
            with b.claim_next("b") as after_ts:  # ts committed: b may see it, never re-posts it
                assert after_ts.message is None or after_ts.message.ts == "1.1"
            a.mark_delivered(mine.message.seq, NOW)
        with b.claim_next("b") as next_one:
            assert next_one.message is not None
            assert next_one.message.text == "1"
            b.record_ts(next_one.message.seq, "1.2")
            b.mark_delivered(next_one.message.seq, NOW)
        assert a.outbox_counts() == {"delivered": 2, "failed": 0, "pending": 1}
        assert a.posted_message("e1") == ("C1", "1.2")


def test_a_claim_ends_with_its_block(state_where: str | Path) -> None:
    with Store.open(state_where) as a, Store.open(state_where) as b:
        a.enqueue([OutboxDraft(id="e#post", event_id="e", action="post", text="x")], NOW)
        with a.claim_next("a") as mine:
            assert mine.message is not None
        with b.claim_next("b") as theirs:  # a gave up without delivering: b may take it
            assert theirs.message is not None
            b.record_attempt_failure(
                theirs.message.seq, "HTTP 500", next_attempt_at=NOW + timedelta(seconds=5), now=NOW
            )
        (left,) = a.pending()
        assert left.attempts == 1


def test_postgres_errors_are_one_line_without_the_password(postgres: PostgresServer) -> None:
    wrong = postgres.url().replace(postgres.password, "not-the-password-" + "x" * 8)
    with pytest.raises(StateError) as err:
        Store.open(wrong)
    text = str(err.value)
    assert "\n" not in text
    assert "not-the-password" not in text
    assert "***" in text
    assert "password authentication failed" in text
    url = postgres.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE someone_elses(x int)")
    with pytest.raises(StateError, match="not a relaycheck state file") as foreign:
        Store.open(url)
    assert postgres.password not in str(foreign.value)
    with pytest.raises(StateError, match="not a database URL"):
        Store.open("postgresql://u:secret@[::1")
    with pytest.raises(StateError, match="unsupported database"):
        Store.open("mysql://u:hunter2@127.0.0.1/db")


def test_replicas_starting_together_migrate_once(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            Store.open(url, tenant="contoso").close()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0003_delivery_attempts",)
        ]


def test_a_newer_schema_is_refused_and_left_alone(state_where: str | Path) -> None:
    with Store.open(state_where) as store:
        cycle(store, [finding("mail1")], NOW)
        with store._b.engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_future'"))
    with pytest.raises(StateError, match="newer relaycheck"):
        Store.open(state_where)
    with pytest.raises(StateError, match="newer relaycheck"):
        Store.upgrade(state_where)


def test_delivery_attempts_are_recorded_per_message(state_where: str | Path) -> None:
    """attempted_at survives an unclear failure only; failures count outages, not 429s; a
    success or a restart (reset_backoff) clears every stored backoff."""
    drafts = [
        OutboxDraft(id=f"e{i}#post", event_id=f"e{i}", action="post", text=f"{i}") for i in range(3)
    ]
    later = NOW + timedelta(seconds=30)
    with Store.open(state_where, channel="C1") as store:
        store.enqueue(drafts, NOW)
        first, second, third = (m.seq for m in store.pending())
        assert store.record_attempt_start(first, NOW)
        store.record_attempt_start(second, NOW)
        store.record_attempt_start(third, NOW)
        store.record_attempt_failure(
            first, "timed out", next_attempt_at=later, now=NOW, unclear=True, outage=True
        )
        store.record_attempt_failure(second, "rate limited (429)", next_attempt_at=later, now=NOW)
        store.record_attempt_failure(third, "channel_not_found", next_attempt_at=None, now=NOW)
        by_seq = {m.seq: m for m in store.pending()}
        assert set(by_seq) == {first, second}  # the third failed for good
        assert by_seq[first].attempted_at == NOW  # unclear: looked up before posting again
        assert by_seq[first].failures == 1
        assert by_seq[second].attempted_at is None  # Slack clearly refused it
        assert by_seq[second].failures == 0  # a 429 is no outage
        assert by_seq[second].attempts == 1
        assert store.reset_backoff() == 2
        assert store.reset_backoff() == 0
        assert all(m.next_attempt_at is None and m.failures == 0 for m in store.pending())
        assert store.pending()[0].attempted_at == NOW  # the lookup is still owed
    with Store.open(state_where) as store:
        engine = store._b.engine
        with engine.connect() as conn:
            failed = conn.execute(
                sa.select(schema.outbox.c.attempted_at).where(schema.outbox.c.seq == third)
            ).scalar()
        assert failed is None


def test_a_claim_holds_only_its_own_message(state_where: str | Path) -> None:
    """The worker claims the message it chose: another replica waits for that one (busy) but
    may deliver a message of another channel meanwhile; committing attempted_at keeps the claim."""
    drafts = [
        OutboxDraft(id="e0#post", event_id="e0", action="post", text="0", channel="C1"),
        OutboxDraft(id="e1#post", event_id="e1", action="post", text="1", channel="C2"),
    ]
    with Store.open(state_where) as a, Store.open(state_where) as b:
        a.enqueue(drafts, NOW)
        head, other = (m.seq for m in a.pending())
        with a.claim(head, "a") as mine:
            assert mine.message is not None
            assert a.record_attempt_start(head, NOW)  # the claim is still a's afterwards
            with b.claim(head, "b") as theirs:
                assert theirs.message is None
                assert theirs.busy
            with b.claim_next("b") as next_head:
                assert next_head.message is None
                assert next_head.busy  # the head-only claim still waits for the head
            with b.claim(other, "b") as theirs:
                assert theirs.message is not None
                assert theirs.message.text == "1"
                b.record_ts(other, "1.2")
                b.mark_delivered(other, NOW)
            a.record_ts(head, "1.1")
            a.mark_delivered(head, NOW)
        with b.claim(head, "b") as gone:
            assert gone.message is None
            assert not gone.busy  # delivered: nothing to wait for
        assert a.outbox_counts() == {"delivered": 2, "failed": 0, "pending": 0}


def test_a_claim_lost_while_attempted_at_commits_is_not_posted(postgres: PostgresServer) -> None:
    """PostgreSQL: committing attempted_at ends the row lock for a moment. A replica that takes
    the message in that moment owns it; the first one is told not to post."""
    url = postgres.create_database()
    with Store.open(url) as a, Store.open(url) as b:
        a.enqueue([OutboxDraft(id="e#post", event_id="e", action="post", text="x")], NOW)
        (seq,) = (m.seq for m in a.pending())
        taken = []
        relock = a._lock

        def b_first(conn: sa.Connection, wanted: int | None, hold: float) -> tuple[object, bool]:
            claim = b.claim(seq, "b")
            taken.append((claim, claim.__enter__()))
            return relock(conn, wanted, hold)

        with a.claim(seq, "a") as mine:
            assert mine.message is not None
            a._lock = b_first  # type: ignore[method-assign]
            assert not a.record_attempt_start(seq, NOW)
            a._lock = relock  # type: ignore[method-assign]
        ((claim, theirs),) = taken
        assert theirs.message is not None
        assert theirs.message.attempted_at == NOW  # b looks it up before posting it
        claim.__exit__(None, None, None)


def test_certificate_snapshots_upsert_in_one_statement(state_where: str | Path) -> None:
    """A cycle writes its certificate snapshots in one statement: a source seen twice in the
    same cycle (the last wins, as row by row), and an update of a known one, on both back ends."""
    from checks.rules.lifecycle import CertificateSnapshot

    def snap(source: str, fingerprint: str, name: str) -> CertificateSnapshot:
        return CertificateSnapshot(
            source=source,
            fingerprint=fingerprint,
            subject=f"CN={name}",
            issuer="CN=Contoso CA",
            names=(name,),
            not_after=NOW + timedelta(days=90),
            chain_length=2,
        )

    def record(store: Store, certificates: list[CertificateSnapshot], now: datetime) -> None:
        store.record_cycle(
            run=RunRecord(started_at=now, finished_at=now, ok=True),
            states={},
            drafts=[],
            certificates=certificates,
            now=now,
        )

    with Store.open(state_where, tenant="contoso") as store:
        record(
            store,
            [snap("mx1/127.0.0.1", "aa", "old.contoso.com"), snap("mx1/127.0.0.1", "aa", "mx1")],
            NOW,
        )
        assert store.latest_certificates()["mx1/127.0.0.1"].names == ("mx1",)
        later = NOW + timedelta(hours=1)
        record(
            store, [snap("mx1/127.0.0.1", "aa", "mx1.contoso.com"), snap("mx2", "bb", "mx2")], later
        )
        latest = store.latest_certificates()
        assert latest["mx1/127.0.0.1"].names == ("mx1.contoso.com",)
        assert latest["mx2"].fingerprint == "bb"
        # a renewal is a new row for the source; the latest seen wins
        record(store, [snap("mx1/127.0.0.1", "cc", "mx1.contoso.com")], later + timedelta(hours=1))
        assert store.latest_certificates()["mx1/127.0.0.1"].fingerprint == "cc"
