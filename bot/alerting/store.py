"""The state file: runs, finding lifecycle, acknowledgements, snoozes, certificates, outbox.

sqlite3 in WAL mode, so `relaycheck findings` (or a cron `run-once`) can read while `serve`
writes. The schema is versioned: `schema_version` holds the number of migrations applied and
`_MIGRATIONS` are applied in order inside one transaction each, so an upgrade that fails halfway
leaves the previous schema intact. A file that is not a relaycheck database, or one written by a
newer relaycheck, is refused with a one-line `StateError` naming the file and nothing in it is
touched.

A cycle's results (lifecycle states, certificate observations, outbox messages, the run record)
are written in ONE transaction: either the alerts of a run are queued together with the state
that says they were raised, or neither is (a crash in between cannot lose or double an alert).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.records import OpenFinding, OutboxDraft, OutboxMessage, RunRecord
from checks.errors import RelaycheckError
from checks.model import CheckId, Finding, Severity
from checks.rules.lifecycle import (
    Acknowledgement,
    CertificateSnapshot,
    FindingKey,
    FindingState,
    Snooze,
    snooze_active,
)


class StateError(RelaycheckError):
    """The state file cannot be used (unreadable, corrupt, newer schema, unknown finding)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


# --------------------------------------------------------------------------- migrations


def _script(db: sqlite3.Connection, text: str) -> None:
    for statement in text.split(";"):
        if statement.strip():
            db.execute(statement)


def _m1_initial(db: sqlite3.Connection) -> None:
    # statement by statement: executescript() would COMMIT the migration's transaction early
    _script(
        db,
        """
        CREATE TABLE runs(
            id INTEGER PRIMARY KEY,
            job TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            ok INTEGER NOT NULL,
            summary TEXT
        );
        CREATE TABLE findings(
            check_id TEXT NOT NULL,
            subject TEXT NOT NULL,
            cause TEXT NOT NULL,
            open INTEGER NOT NULL,
            severity_rank INTEGER NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (check_id, subject, cause)
        );
        CREATE TABLE acknowledgements(
            id INTEGER PRIMARY KEY,
            check_id TEXT NOT NULL, subject TEXT NOT NULL, cause TEXT NOT NULL,
            user TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE snoozes(
            id INTEGER PRIMARY KEY,
            check_id TEXT NOT NULL, subject TEXT NOT NULL, cause TEXT NOT NULL,
            until TEXT NOT NULL,
            user TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE certificates(
            source TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            snapshot TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            PRIMARY KEY (source, fingerprint)
        );
        CREATE TABLE outbox(
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            event_id TEXT NOT NULL,
            action TEXT NOT NULL,
            channel TEXT NOT NULL,
            text TEXT NOT NULL,
            blocks TEXT NOT NULL,
            reply_to TEXT,
            keys TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            ts TEXT,
            delivered_at TEXT,
            failed_at TEXT,
            last_error TEXT
        );
        CREATE INDEX outbox_pending ON outbox(delivered_at, failed_at, seq);
        CREATE INDEX outbox_event ON outbox(event_id);
        """,
    )


def _m2_job_marks(db: sqlite3.Connection) -> None:
    # when each scheduled job last ran: decides on start whether a run was missed
    db.execute("CREATE TABLE job_marks(job TEXT PRIMARY KEY, last_run_at TEXT NOT NULL)")


def _m3_tenant_domains(db: sqlite3.Connection) -> None:
    # the accepted domains the last run saw: "appeared/disappeared since the last run" drift
    db.execute("CREATE TABLE tenant_domains(name TEXT PRIMARY KEY, seen_at TEXT NOT NULL)")
    db.execute("CREATE TABLE tenant_domains_seen(id INTEGER PRIMARY KEY CHECK (id = 1), at TEXT)")


def _m4_delivery_attempts(db: sqlite3.Connection) -> None:
    # attempted_at: a post whose outcome is not known (sent, answer lost) is looked up in the
    # channel before it is posted again; failures: 5xx/network failures since the last success
    # (the backoff exponent; 429 does not count)
    db.execute("ALTER TABLE outbox ADD COLUMN attempted_at TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")


_MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _m1_initial,
    _m2_job_marks,
    _m3_tenant_domains,
    _m4_delivery_attempts,
)
SCHEMA_VERSION = len(_MIGRATIONS)


# --------------------------------------------------------------------------- (de)serialisation


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def finding_from_json(data: Mapping[str, Any]) -> Finding:
    return Finding(
        check=CheckId(data["check"]),
        severity=Severity(data["severity"]),
        subject=str(data["subject"]),
        message=str(data["message"]),
        details=dict(data.get("details") or {}),
        cause=str(data.get("cause", "")),
    )


def _state_to_json(state: FindingState) -> str:
    return json.dumps(
        {
            "finding": state.finding.to_json(),
            "open": state.open,
            "opened_at": _ts(state.opened_at),
            "last_seen_at": _ts(state.last_seen_at),
            "resolved_at": _ts(state.resolved_at),
            "alerted_severity": state.alerted_severity.value if state.alerted_severity else None,
            "alerted_step": state.alerted_step,
            "history": list(state.history),
            "flapping": state.flapping,
            "flap_noted": state.flap_noted,
            "snooze_broken_at": _ts(state.snooze_broken_at),
            "alert_event": state.alert_event,
        }
    )


def _state_from_json(text: str) -> FindingState:
    data = json.loads(text)
    opened = datetime.fromisoformat(data["opened_at"])
    seen = datetime.fromisoformat(data["last_seen_at"])
    return FindingState(
        finding=finding_from_json(data["finding"]),
        open=bool(data["open"]),
        opened_at=opened,
        last_seen_at=seen,
        resolved_at=_dt(data.get("resolved_at")),
        alerted_severity=Severity(data["alerted_severity"])
        if data.get("alerted_severity")
        else None,
        alerted_step=data.get("alerted_step"),
        history=tuple(bool(x) for x in data.get("history", ())),
        flapping=bool(data.get("flapping", False)),
        flap_noted=bool(data.get("flap_noted", False)),
        snooze_broken_at=_dt(data.get("snooze_broken_at")),
        alert_event=data.get("alert_event"),
    )


# --------------------------------------------------------------------------- the store


class Store:
    """One sqlite connection; every write is a short transaction."""

    def __init__(self, db: sqlite3.Connection, path: Path, *, channel: str = "console") -> None:
        self._db = db
        self.path = path
        self.channel = channel

    @classmethod
    def open(cls, path: Path | str, *, channel: str | None = None) -> Store:
        """Open (creating and migrating as needed) the state file at `path`."""
        path = Path(path)
        shown = str(path)
        if path.is_dir():
            raise StateError(shown, "is a directory, not a relaycheck state file")
        if path.parent and not path.parent.exists():
            raise StateError(shown, f"folder {path.parent} does not exist")
        if path.exists():
            _inspect_read_only(path, shown)
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as err:
            raise StateError(shown, f"cannot open ({err})") from None
        try:
            db.execute("PRAGMA busy_timeout = 10000")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode is None:
                raise sqlite3.DatabaseError("no journal mode")
            db.execute("PRAGMA foreign_keys = ON")
            _migrate(db, shown)
        except sqlite3.DatabaseError as err:
            db.close()
            raise StateError(shown, f"not a usable relaycheck state file ({err})") from None
        except StateError:
            db.close()
            raise
        return cls(db, path, channel=channel or "console")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> _Transaction:
        return _Transaction(self._db, str(self.path))

    # ----------------------------------------------------------------- lifecycle state

    def load_states(self) -> dict[FindingKey, FindingState]:
        rows = self._db.execute("SELECT state FROM findings").fetchall()
        states = {}
        for (text,) in rows:
            state = _state_from_json(text)
            states[state.key] = state
        return states

    def acks(self) -> dict[FindingKey, Acknowledgement]:
        rows = self._db.execute(
            "SELECT check_id, subject, cause, user, at FROM acknowledgements ORDER BY id"
        ).fetchall()
        return {
            (c, s, k): Acknowledgement(user=u, at=datetime.fromisoformat(a))
            for c, s, k, u, a in rows
        }

    def snoozes(self) -> dict[FindingKey, Snooze]:
        rows = self._db.execute(
            "SELECT check_id, subject, cause, until, user, at FROM snoozes ORDER BY id"
        ).fetchall()
        return {
            (c, s, k): Snooze(
                until=datetime.fromisoformat(until), user=u, at=datetime.fromisoformat(a)
            )
            for c, s, k, until, u, a in rows
        }

    def record_cycle(
        self,
        *,
        run: RunRecord,
        states: Mapping[FindingKey, FindingState],
        drafts: Sequence[OutboxDraft],
        certificates: Iterable[CertificateSnapshot] = (),
        accepted_domains: Collection[str] | None = None,
        now: datetime,
    ) -> None:
        """Persist everything one cycle decided, atomically (see the module docstring).

        `accepted_domains` None leaves the stored drift baseline as it was (a failed run)."""
        with self._write() as db:
            if accepted_domains is not None:
                db.execute("DELETE FROM tenant_domains")
                db.executemany(
                    "INSERT INTO tenant_domains(name, seen_at) VALUES (?, ?)",
                    [(name, _ts(now)) for name in sorted(accepted_domains)],
                )
                db.execute(
                    "INSERT INTO tenant_domains_seen(id, at) VALUES (1, ?) "
                    "ON CONFLICT(id) DO UPDATE SET at = excluded.at",
                    (_ts(now),),
                )
            db.execute(
                "INSERT INTO runs(job, started_at, finished_at, ok, summary) VALUES (?,?,?,?,?)",
                (
                    run.job,
                    _ts(run.started_at),
                    _ts(run.finished_at),
                    int(run.ok),
                    json.dumps(run.summary) if run.summary is not None else None,
                ),
            )
            db.executemany(
                "INSERT INTO findings(check_id, subject, cause, open, severity_rank, state) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT(check_id, subject, cause) DO UPDATE SET "
                "open = excluded.open, severity_rank = excluded.severity_rank, "
                "state = excluded.state",
                [
                    (*key, int(st.open), st.finding.severity.rank, _state_to_json(st))
                    for key, st in states.items()
                ],
            )
            for cert in certificates:
                db.execute(
                    "INSERT INTO certificates(source, fingerprint, snapshot, first_seen_at, "
                    "last_seen_at) VALUES (?,?,?,?,?) ON CONFLICT(source, fingerprint) DO UPDATE "
                    "SET last_seen_at = excluded.last_seen_at, snapshot = excluded.snapshot",
                    (cert.source, cert.fingerprint, json.dumps(cert.to_json()), _ts(now), _ts(now)),
                )
            self._enqueue(db, drafts, now)
            db.execute(
                "INSERT INTO job_marks(job, last_run_at) VALUES (?, ?) "
                "ON CONFLICT(job) DO UPDATE SET last_run_at = excluded.last_run_at",
                (run.job, _ts(run.started_at)),
            )

    def open_findings(self, *, now: datetime | None = None) -> list[OpenFinding]:
        """Open findings, worst first, then oldest first."""
        acks = self.acks()
        snoozes = self.snoozes()
        moment = now or datetime.now().astimezone()
        out = []
        for state in self.load_states().values():
            if not state.open:
                continue
            ack = acks.get(state.key)
            snooze = snoozes.get(state.key)
            out.append(
                OpenFinding(
                    finding=state.finding,
                    opened_at=state.opened_at,
                    last_seen_at=state.last_seen_at,
                    acknowledged_by=ack.user if ack and ack.at >= state.opened_at else None,
                    snoozed_until=snooze.until
                    if snooze is not None and snooze_active(state, snooze, moment)
                    else None,
                    flapping=state.flapping,
                )
            )
        out.sort(key=lambda o: (-o.finding.severity.rank, o.opened_at, o.finding.key))
        return out

    def last_run(self, job: str | None = None) -> RunRecord | None:
        query = "SELECT job, started_at, finished_at, ok, summary FROM runs"
        params: tuple[str, ...] = ()
        if job is not None:
            query += " WHERE job = ?"
            params = (job,)
        row = self._db.execute(query + " ORDER BY id DESC LIMIT 1", params).fetchone()
        if row is None:
            return None
        name, started, finished, ok, summary = row
        started_at = datetime.fromisoformat(started)
        return RunRecord(
            job=name,
            started_at=started_at,
            finished_at=_dt(finished),
            ok=bool(ok),
            summary=json.loads(summary) if summary else None,
        )

    def last_job_run(self, job: str) -> datetime | None:
        row = self._db.execute("SELECT last_run_at FROM job_marks WHERE job = ?", (job,)).fetchone()
        return datetime.fromisoformat(row[0]) if row else None

    def mark_job(self, job: str, at: datetime) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO job_marks(job, last_run_at) VALUES (?, ?) "
                "ON CONFLICT(job) DO UPDATE SET last_run_at = excluded.last_run_at",
                (job, _ts(at)),
            )

    def accepted_domains(self) -> frozenset[str] | None:
        """The tenant's accepted domains as the last run saw them; None before any run did."""
        if self._db.execute("SELECT 1 FROM tenant_domains_seen").fetchone() is None:
            return None
        rows = self._db.execute("SELECT name FROM tenant_domains").fetchall()
        return frozenset(name for (name,) in rows)

    def latest_certificates(self) -> dict[str, CertificateSnapshot]:
        """The most recently seen certificate of every source (endpoint/address or file)."""
        rows = self._db.execute(
            "SELECT source, snapshot FROM certificates ORDER BY last_seen_at, first_seen_at"
        ).fetchall()
        latest: dict[str, CertificateSnapshot] = {}
        for source, snapshot in rows:
            latest[source] = CertificateSnapshot.from_json(json.loads(snapshot))
        return latest

    def _require_known(self, db: sqlite3.Connection, key: FindingKey) -> None:
        row = db.execute(
            "SELECT 1 FROM findings WHERE check_id = ? AND subject = ? AND cause = ?", key
        ).fetchone()
        if row is None:
            raise StateError(str(self.path), f"no finding {'/'.join(k for k in key if k)!r}")

    def acknowledge(self, key: FindingKey, user: str, now: datetime) -> None:
        self.acknowledge_all([key], user, now)

    def acknowledge_all(self, keys: Sequence[FindingKey], user: str, now: datetime) -> None:
        """Every finding of a grouped alert, in one transaction: all of them or none."""
        with self._write() as db:
            for item in keys:
                self._require_known(db, item)
            db.executemany(
                "INSERT INTO acknowledgements(check_id, subject, cause, user, at) VALUES (?,?,?,?,?)",
                [(*item, user, _ts(now)) for item in keys],
            )

    def snooze(self, key: FindingKey, until: datetime, user: str, now: datetime) -> None:
        self.snooze_all([key], until, user, now)

    def snooze_all(
        self, keys: Sequence[FindingKey], until: datetime, user: str, now: datetime
    ) -> None:
        """Every finding of a grouped alert, in one transaction: all of them or none."""
        if until <= now:
            raise StateError(str(self.path), "a snooze must end in the future")
        with self._write() as db:
            for item in keys:
                self._require_known(db, item)
            db.executemany(
                "INSERT INTO snoozes(check_id, subject, cause, until, user, at) VALUES (?,?,?,?,?,?)",
                [(*item, _ts(until), user, _ts(now)) for item in keys],
            )

    def keys_for_event(self, event_id: str) -> list[FindingKey]:
        """The findings an alert message was about (its buttons act on all of them)."""
        rows = self._db.execute(
            "SELECT keys FROM outbox WHERE event_id = ? ORDER BY seq", (event_id,)
        ).fetchall()
        out: list[FindingKey] = []
        for (text,) in rows:
            for check, subject, cause in json.loads(text):
                if (check, subject, cause) not in out:
                    out.append((check, subject, cause))
        return out

    # ----------------------------------------------------------------- outbox

    def enqueue(self, drafts: Sequence[OutboxDraft], now: datetime) -> None:
        with self._write() as db:
            self._enqueue(db, drafts, now)

    def _enqueue(
        self, db: sqlite3.Connection, drafts: Sequence[OutboxDraft], now: datetime
    ) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO outbox(id, event_id, action, channel, text, blocks, reply_to, "
            "keys, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    d.id,
                    d.event_id,
                    d.action,
                    d.channel or self.channel,
                    d.text,
                    json.dumps(list(d.blocks)),
                    d.reply_to,
                    json.dumps([list(k) for k in d.keys]),
                    _ts(now),
                )
                for d in drafts
            ],
        )

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Undelivered, not permanently failed messages in the order they were queued."""
        rows = self._db.execute(
            "SELECT seq, id, event_id, action, channel, text, blocks, reply_to, attempts, "
            "next_attempt_at, ts, created_at, attempted_at, failures FROM outbox "
            "WHERE delivered_at IS NULL AND failed_at IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            OutboxMessage(
                seq=seq,
                id=ident,
                event_id=event_id,
                action=action,
                channel=channel,
                text=text,
                blocks=tuple(json.loads(blocks)),
                reply_to=reply_to,
                attempts=attempts,
                next_attempt_at=_dt(next_at),
                ts=ts,
                created_at=datetime.fromisoformat(created),
                attempted_at=_dt(attempted),
                failures=failures,
            )
            for (
                seq,
                ident,
                event_id,
                action,
                channel,
                text,
                blocks,
                reply_to,
                attempts,
                next_at,
                ts,
                created,
                attempted,
                failures,
            ) in rows
        ]

    def posted_message(self, event_id: str) -> tuple[str, str] | None:
        """(channel, ts) of the top-level message posted for `event_id`, once Slack confirmed it."""
        row = self._db.execute(
            "SELECT channel, ts FROM outbox WHERE event_id = ? AND action = 'post' "
            "AND ts IS NOT NULL ORDER BY seq LIMIT 1",
            (event_id,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def record_ts(self, seq: int, ts: str) -> None:
        """Step 1 after Slack confirmed: remember its ts (a restart then never posts again)."""
        with self._write() as db:
            db.execute("UPDATE outbox SET ts = ? WHERE seq = ?", (ts, seq))

    def mark_delivered(self, seq: int, now: datetime) -> None:
        """Step 2: the message leaves the outbox."""
        with self._write() as db:
            db.execute("UPDATE outbox SET delivered_at = ? WHERE seq = ?", (_ts(now), seq))

    def record_attempt_start(self, seq: int, now: datetime) -> None:
        """Committed before a post is sent: if no clear answer follows (timeout, lost
        connection, kill -9), the next attempt looks for the message in Slack first."""
        with self._write() as db:
            db.execute("UPDATE outbox SET attempted_at = ? WHERE seq = ?", (_ts(now), seq))

    def record_attempt_failure(
        self,
        seq: int,
        error: str,
        *,
        next_attempt_at: datetime | None,
        now: datetime,
        unclear: bool = False,
        outage: bool = False,
    ) -> None:
        """A failed attempt; `next_attempt_at` None means permanent (stays, marked failed).

        `unclear`: Slack may have posted it (keeps `attempted_at` for the lookup); otherwise
        Slack clearly did not, and `attempted_at` is cleared. `outage`: a 5xx or network
        failure, counted in `failures` (the backoff exponent); a 429 is not."""
        with self._write() as db:
            if next_attempt_at is None:
                db.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, failed_at = ?, "
                    "attempted_at = NULL WHERE seq = ?",
                    (error[:500], _ts(now), seq),
                )
            else:
                db.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
                    "next_attempt_at = ?, failures = failures + ?, "
                    "attempted_at = CASE WHEN ? THEN attempted_at ELSE NULL END WHERE seq = ?",
                    (error[:500], _ts(next_attempt_at), int(outage), int(unclear), seq),
                )

    def reset_backoff(self) -> int:
        """Slack answered again (a success, or a restart): every waiting message may be tried
        now, with its failure count back at 0. Returns how many rows were waiting."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE outbox SET next_attempt_at = NULL, failures = 0 "
                "WHERE delivered_at IS NULL AND failed_at IS NULL "
                "AND (next_attempt_at IS NOT NULL OR failures > 0)"
            )
            return cursor.rowcount

    def outbox_counts(self) -> dict[str, int]:
        row = self._db.execute(
            "SELECT SUM(delivered_at IS NOT NULL), SUM(failed_at IS NOT NULL), "
            "SUM(delivered_at IS NULL AND failed_at IS NULL) FROM outbox"
        ).fetchone()
        return {"delivered": row[0] or 0, "failed": row[1] or 0, "pending": row[2] or 0}


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolling back on any error so a half-write never lands."""

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StateError(self._path, f"cannot write ({err})") from None
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as err:
                self._db.execute("ROLLBACK")
                raise StateError(self._path, f"cannot write ({err})") from None
            return
        self._db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            # a failed statement inside the transaction: one error type for every caller
            raise StateError(self._path, f"cannot write ({exc})") from None


def _inspect_read_only(path: Path, shown: str) -> None:
    """Judge an existing file through a read-only connection before anything writes to it.

    Opening read-write and switching to WAL would already change another program's database
    (and a corrupt page would surface later, as a traceback in the middle of a command). Here a
    foreign schema, a newer relaycheck's schema or a corrupt file is refused untouched."""
    if path.stat().st_size == 0:
        return  # an empty file is a new database
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as err:
        raise StateError(shown, f"cannot open ({err})") from None
    try:
        db.execute("PRAGMA busy_timeout = 10000")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "schema_version" not in tables:
            raise StateError(shown, "is an sqlite database but not a relaycheck state file")
        if "schema_version" in tables:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            version = int(row[0]) if row and isinstance(row[0], int) else 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    shown,
                    f"written by a newer relaycheck (schema {version}, "
                    f"this one knows {SCHEMA_VERSION})",
                )
        (verdict,) = db.execute("PRAGMA quick_check(1)").fetchone()
        if verdict != "ok":
            raise StateError(shown, f"is corrupt ({str(verdict)[:120]}); restore it or remove it")
    except sqlite3.DatabaseError as err:
        raise StateError(shown, f"not a usable relaycheck state file ({err})") from None
    finally:
        db.close()


def _migrate(db: sqlite3.Connection, shown: str) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables:
                raise StateError(shown, "is an sqlite database but not a relaycheck state file")
            db.execute("CREATE TABLE schema_version(version INTEGER NOT NULL)")
            db.execute("INSERT INTO schema_version(version) VALUES (0)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StateError(
                shown,
                f"written by a newer relaycheck (schema {version}, this one knows {SCHEMA_VERSION})",
            )
        for migration in _MIGRATIONS[version:]:
            migration(db)
        db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
