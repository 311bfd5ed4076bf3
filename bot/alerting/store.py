"""The state store: runs, finding lifecycle, acks, snoozes, certificates, outbox, the lease.

Two back ends, one schema, one migration history (SQLAlchemy Core 2 + Alembic, see
`bot/alerting/migrations`): an sqlite file (`[state] path`, the embedded default, WAL mode so
`relaycheck findings` can read while `serve` writes) or PostgreSQL (`[state] url`, shared by
several replicas). Opening migrates the schema inside one transaction, so an upgrade that fails
halfway leaves the previous schema intact; on PostgreSQL an advisory lock makes two replicas
starting together migrate once. A file or database that is not relaycheck's, or one written by
a newer relaycheck, is refused with a one-line `StateError` and nothing in it is touched.
Passwords never appear in a `StateError` (URLs are shown with `***`).

Every row belongs to a tenant (`[tenant] name`): a `Store` reads and writes one tenant only, so
two configurations sharing a store never see or resolve each other's findings.

A cycle's results (lifecycle states, certificate observations, outbox messages, the run record)
are written in ONE transaction: either the alerts of a run are queued together with the state
that says they were raised, or neither is (a crash in between cannot lose or double an alert).
With a `Fence` (the scheduler's lease epoch) that transaction first checks, under a row lock,
that the lease is still this replica's: a leader that lost its lease writes nothing.

Outbox claims: on PostgreSQL the message being delivered (`claim_next`: the head; `claim`: a
given message) is locked with `FOR UPDATE SKIP LOCKED` for the time of its delivery, so any
replica can drain the outbox and a message being delivered by one is skipped by the others (who
then wait for it). sqlite has one writer at a time; there the claim is a
`claimed_by`/`claimed_until` mark taken in a short write transaction (a claim that outlives a
crashed process expires).

An existing sqlite file is first judged through a read-only connection (its schema, then
`PRAGMA quick_check`): a foreign file, one from a newer relaycheck or a corrupt one is refused
before anything writes to it (it is never switched to WAL).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.alerting import schema as t
from bot.alerting.lease import SCHEDULER, Fence, Lease, decide, holds, released
from bot.records import LeaderRecord, OpenFinding, OutboxDraft, OutboxMessage, RunRecord
from checks.errors import RelaycheckError
from checks.model import CheckId, Config, Finding, Severity, StateSettings
from checks.rules.lifecycle import (
    Acknowledgement,
    CertificateSnapshot,
    FindingKey,
    FindingState,
    Snooze,
    snooze_active,
)

# the pre-Alembic counter, still kept (each revision that older relaycheck versions must refuse
# sets it): a relaycheck from before tenants refuses 4, one without delivery attempts 5
SCHEMA_VERSION = 5
# the newest pre-Alembic counter: a file without alembic_version above it is from elsewhere
_LEGACY_VERSION = 3
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_TENANT = "default"
URL_ENV = "RELAYCHECK_STATE_URL"
REPLICA_ENV = "RELAYCHECK_REPLICA"
_MIGRATION_LOCK = 0x7265_6C61_7963  # "relayc": serialises replicas migrating one database


class StateError(RelaycheckError):
    """The state cannot be used (unreadable, corrupt, newer schema, unreachable, unknown finding)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class LeaseLost(StateError):
    """A fenced write found the lease in another replica's hands (or expired): nothing written."""


@dataclass(frozen=True, slots=True)
class Claim:
    """The message this worker may deliver now (`message`, as it stands under the claim), or why
    not: there is none (the outbox is empty, or the message was delivered or failed meanwhile:
    `message` None, `busy` False) or another worker is delivering it (`busy` True)."""

    message: OutboxMessage | None
    busy: bool = False


# --------------------------------------------------------------------------- where the state is


def state_url(settings: StateSettings, environ: Mapping[str, str]) -> str | None:
    """The database URL, if the state is not an sqlite file: `$RELAYCHECK_STATE_URL`, the file
    `$RELAYCHECK_STATE_URL_FILE` names (how a secret store mounts it), else `[state] url`.

    The environment wins so the password can stay out of the config file."""
    value = environ.get(URL_ENV, "").strip()
    if not value and environ.get(URL_ENV + "_FILE"):
        name = environ[URL_ENV + "_FILE"]
        try:
            value = Path(name).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise StateError(URL_ENV + "_FILE", f"cannot read {name} ({err.strerror})") from None
        if not value:
            raise StateError(URL_ENV + "_FILE", f"{name} is empty")
    return value or settings.url


def replica_id(environ: Mapping[str, str]) -> str:
    """This process's name among the replicas: `$RELAYCHECK_REPLICA`, else host and pid."""
    return environ.get(REPLICA_ENV, "").strip() or f"{socket.gethostname()}-{os.getpid()}"


def _redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _claimant(worker: str) -> str:
    """An sqlite claim names the worker and its process: the file is on this machine, so a
    claim whose process is gone (kill -9) is void at once instead of after `hold_seconds`."""
    return f"{worker} {socket.gethostname()}:{os.getpid()}"


def _claimant_alive(claimed_by: str) -> bool:
    _worker, _, where = claimed_by.rpartition(" ")
    host, _, pid = where.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process: only its claim's expiry says it is gone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


def _lease(row: Any) -> Lease | None:
    if row is None:
        return None
    return Lease(
        holder=row.holder,
        epoch=int(row.epoch),
        since=float(row.since),
        renewed_at=float(row.renewed_at),
        expires_at=float(row.expires_at),
    )


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(
        seq=row.seq,
        id=row.id,
        event_id=row.event_id,
        action=row.action,
        channel=row.channel,
        text=row.text,
        blocks=tuple(json.loads(row.blocks)),
        reply_to=row.reply_to,
        attempts=row.attempts,
        next_attempt_at=_dt(row.next_attempt_at),
        ts=row.ts,
        created_at=datetime.fromisoformat(row.created_at),
        attempted_at=_dt(row.attempted_at),
        failures=int(row.failures or 0),
    )


_OUTBOX_COLUMNS = (
    t.outbox.c.seq,
    t.outbox.c.id,
    t.outbox.c.event_id,
    t.outbox.c.action,
    t.outbox.c.channel,
    t.outbox.c.text,
    t.outbox.c.blocks,
    t.outbox.c.reply_to,
    t.outbox.c.attempts,
    t.outbox.c.next_attempt_at,
    t.outbox.c.ts,
    t.outbox.c.created_at,
    t.outbox.c.attempted_at,
    t.outbox.c.failures,
)


# --------------------------------------------------------------------------- engines


class _Backend:
    """One engine and how to talk about it: `shown` names it in errors (never a password)."""

    def __init__(self, engine: Engine, shown: str, *, secret: str | None, path: Path | None):
        self.engine = engine
        self.shown = shown
        self.secret = secret
        self.path = path
        self.postgresql = engine.dialect.name == "postgresql"
        # sqlite: BEGIN IMMEDIATE for writes (one writer, no lock upgrade deadlocks)
        self.writer = engine.execution_options(relaycheck_write=True)

    def problem(self, err: BaseException) -> str:
        """One line about a database error, with the password (if any) scrubbed out."""
        orig = getattr(err, "orig", None)
        text = str(orig if orig is not None else err).strip().splitlines()
        line = " ".join(part.strip() for part in text if part.strip()) or type(err).__name__
        if self.secret:
            line = line.replace(self.secret, "***")
        return line[:300]

    def error(self, err: BaseException, doing: str) -> StateError:
        return StateError(self.shown, f"{doing} ({self.problem(err)})")


def _sqlite_backend(path: Path) -> _Backend:
    shown = str(path)
    if path.is_dir():
        raise StateError(shown, "is a directory, not a relaycheck state file")
    if path.parent and not path.parent.exists():
        raise StateError(shown, f"folder {path.parent} does not exist")
    if path.exists():
        _inspect_read_only(path, shown)
    engine = sa.create_engine(
        URL.create("sqlite", database=str(path)),
        connect_args={"timeout": 10.0, "check_same_thread": False},
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi: Any, _record: Any) -> None:
        # the driver's own transaction handling is off: BEGIN is ours (SQLAlchemy's recipe),
        # so DDL in a migration is transactional too
        dbapi.isolation_level = None
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA busy_timeout = 10000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("relaycheck_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return _Backend(engine, shown, secret=None, path=path)


def _inspect_read_only(path: Path, shown: str) -> None:
    """Judge an existing sqlite file through a read-only connection before anything writes to it.

    Opening it read-write would already switch it to WAL (another program's database changed),
    and a corrupt page would surface later, as a traceback in the middle of a command. Here a
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
        legacy: int | None = None
        if "schema_version" in tables:
            row = db.execute("SELECT version FROM schema_version").fetchone()
            legacy = int(row[0]) if row and isinstance(row[0], int) else 0
        if "alembic_version" in tables:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
            head, known = _known_revisions()
            if row is not None and str(row[0]) not in known:
                raise StateError(
                    shown, f"written by a newer relaycheck (schema {row[0]}, this one knows {head})"
                )
            if legacy is not None and legacy > SCHEMA_VERSION:
                raise StateError(
                    shown,
                    f"written by a newer relaycheck (schema {legacy}, "
                    f"this one knows {SCHEMA_VERSION})",
                )
        elif legacy is not None and legacy > _LEGACY_VERSION:
            raise StateError(
                shown,
                f"written by a newer relaycheck (schema {legacy}, this one knows {SCHEMA_VERSION})",
            )
        elif tables and legacy is None:
            raise StateError(shown, "is an sqlite database but not a relaycheck state file")
        (verdict,) = db.execute("PRAGMA quick_check(1)").fetchone()
        if verdict != "ok":
            said = " ".join(str(verdict).replace("*** in database main ***", "").split())
            raise StateError(shown, f"is corrupt ({said[:120]}); restore it or remove it")
    except sqlite3.DatabaseError as err:
        raise StateError(shown, f"not a usable relaycheck state file ({err})") from None
    finally:
        db.close()


def _url_backend(text: str) -> _Backend:
    try:
        url = sa.make_url(text)
    except (ArgumentError, ValueError):  # a bad port raises ValueError
        raise StateError(
            "[state] url", "is not a database URL (expected postgresql://USER@HOST/DB)"
        ) from None
    if url.get_backend_name() in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
        if url.drivername != "postgresql+psycopg":  # pragma: no cover - set() always applies
            raise AssertionError(url.drivername)
        if not url.database:
            raise StateError(_redacted(url), "names no database (postgresql://USER@HOST/DB)")
        engine = sa.create_engine(
            url,
            pool_pre_ping=True,  # a restarted database costs one reconnect, not an error
            connect_args={"connect_timeout": 10, "application_name": "relaycheck"},
        )
        return _Backend(engine, _redacted(url), secret=url.password, path=None)
    if url.get_backend_name() == "sqlite" and url.database:
        return _sqlite_backend(Path(url.database))
    raise StateError(
        _redacted(url), "unsupported database (use postgresql://... or an sqlite [state] path)"
    )


def _known_revisions() -> tuple[str, set[str]]:
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head, {rev.revision for rev in script.walk_revisions()}


def upgrade_schema(backend: _Backend, tenant: str) -> tuple[str | None, str]:
    """Bring the schema to the newest revision; returns (revision before, revision now)."""
    head, known = _known_revisions()
    with backend.writer.begin() as conn:
        if backend.postgresql:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        before = _revision(conn, backend)
        if before is not None and before not in known:
            raise StateError(
                backend.shown,
                f"written by a newer relaycheck (schema {before}, this one knows {head})",
            )
        if before == head:
            return before, head
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        cfg.attributes["tenant"] = tenant
        command.upgrade(cfg, "head")
    return before, head


def _revision(conn: Connection, backend: _Backend) -> str | None:
    """Where the schema stands (None: nothing yet, or a pre-Alembic file), refusing databases
    that are not relaycheck's and pre-Alembic files from a newer relaycheck."""
    tables = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in tables:
        row = conn.execute(sa.text("SELECT version_num FROM alembic_version")).first()
        legacy = conn.execute(sa.select(t.schema_version.c.version)).scalar()
        if legacy is not None and int(legacy) > SCHEMA_VERSION:
            raise StateError(
                backend.shown,
                f"written by a newer relaycheck (schema {legacy}, this one knows {SCHEMA_VERSION})",
            )
        return str(row[0]) if row else None
    if "schema_version" in tables:
        legacy = conn.execute(sa.select(t.schema_version.c.version)).scalar()
        if legacy is not None and int(legacy) > _LEGACY_VERSION:
            raise StateError(
                backend.shown,
                f"written by a newer relaycheck (schema {legacy}, this one knows {SCHEMA_VERSION})",
            )
        return None
    if tables:
        kind = "a PostgreSQL database" if backend.postgresql else "an sqlite database"
        raise StateError(backend.shown, f"is {kind} but not a relaycheck state file")
    return None


# --------------------------------------------------------------------------- the store


class Store:
    """The state of one tenant; every write is a short transaction."""

    def __init__(
        self, backend: _Backend, *, tenant: str, channel: str = "console", owns: bool = True
    ) -> None:
        self._b = backend
        self.tenant = tenant
        self.channel = channel
        self._owns = owns
        # PostgreSQL claims in flight: seq -> (connection, transaction) holding the row lock,
        # and the claim's hold (taken again after `record_attempt_start` commits)
        self._claims: dict[int, tuple[Connection, sa.RootTransaction]] = {}
        self._holds: dict[int, float] = {}

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        where: Path | str,
        *,
        channel: str | None = None,
        tenant: str = DEFAULT_TENANT,
        migrate: bool = True,
        check: bool = True,
    ) -> Store:
        """Open the state at `where` (an sqlite path, or a postgresql:// URL), migrating it to
        the newest schema unless `migrate` is false (then an old schema is an error, unless
        `check` is false too)."""
        text = str(where)
        backend = (
            _url_backend(text)
            if isinstance(where, str) and "://" in text
            else _sqlite_backend(Path(where))
        )
        try:
            if migrate or check:
                _prepare(backend, tenant, migrate=migrate)
        except StateError:
            backend.engine.dispose()
            raise
        except SQLAlchemyError as err:
            backend.engine.dispose()
            if backend.postgresql:
                raise backend.error(err, "cannot use the database") from None
            raise StateError(
                backend.shown, f"not a usable relaycheck state file ({backend.problem(err)})"
            ) from None
        return cls(backend, tenant=tenant, channel=channel or "console")

    @classmethod
    def upgrade(cls, where: Path | str, *, tenant: str = DEFAULT_TENANT) -> tuple[str | None, str]:
        """Migrate the state at `where` and close it: (revision before, revision now); before
        is None for an empty database or a state file from before Alembic."""
        with cls.open(where, tenant=tenant, migrate=False, check=False) as store:
            try:
                return upgrade_schema(store._b, tenant)
            except SQLAlchemyError as err:
                raise store._b.error(err, "cannot migrate") from None

    @classmethod
    def from_config(
        cls,
        config: Config,
        environ: Mapping[str, str],
        *,
        channel: str | None = None,
        tenant: str | None = None,
        migrate: bool = True,
    ) -> Store:
        """The store `config` names (`[state] url` or the environment, else `[state] path`),
        for `tenant` (default: the config's `[tenant] name`)."""
        url = state_url(config.state, environ)
        return cls.open(
            url or config.state.path,
            channel=channel,
            tenant=tenant or config.tenant.name,
            migrate=migrate,
        )

    def for_tenant(self, tenant: str) -> Store:
        """A view of the same store for another tenant (closing it leaves this one open)."""
        return Store(self._b, tenant=tenant, channel=self.channel, owns=False)

    @property
    def path(self) -> Path | None:
        """The sqlite file, or None on PostgreSQL."""
        return self._b.path

    @property
    def where(self) -> str:
        """Where the state is, as shown to people (a URL without its password)."""
        return self._b.shown

    @property
    def shared(self) -> bool:
        """Whether several replicas can share this store (PostgreSQL)."""
        return self._b.postgresql

    def close(self) -> None:
        for conn, trans in self._claims.values():
            with contextlib.suppress(SQLAlchemyError):
                trans.rollback()
            conn.close()
        self._claims.clear()
        if self._owns:
            self._b.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction; any database error becomes a one-line StateError."""
        try:
            with self._b.writer.begin() as conn:
                yield conn
        except StateError:
            raise
        except SQLAlchemyError as err:
            raise self._b.error(err, "cannot write") from None

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._b.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as err:
            raise self._b.error(err, "cannot read") from None

    def _mine(self, table: sa.Table) -> sa.ColumnElement[bool]:
        return table.c.tenant == self.tenant

    def tenants(self) -> list[str]:
        """Every tenant with state in this store (what `--tenant` may name)."""
        with self._read() as db:
            names: set[str] = set()
            for table in (t.runs, t.findings, t.outbox):
                names.update(db.execute(sa.select(table.c.tenant).distinct()).scalars())
        return sorted(names)

    # ----------------------------------------------------------------- lifecycle state

    def load_states(self) -> dict[FindingKey, FindingState]:
        with self._read() as db:
            rows = db.execute(sa.select(t.findings.c.state).where(self._mine(t.findings)))
            texts = list(rows.scalars())
        states = {}
        for text in texts:
            state = _state_from_json(text)
            states[state.key] = state
        return states

    def acks(self) -> dict[FindingKey, Acknowledgement]:
        a = t.acknowledgements
        with self._read() as db:
            rows = db.execute(
                sa.select(a.c.check_id, a.c.subject, a.c.cause, a.c.user, a.c.at)
                .where(self._mine(a))
                .order_by(a.c.id)
            ).all()
        return {
            (c, s, k): Acknowledgement(user=u, at=datetime.fromisoformat(at))
            for c, s, k, u, at in rows
        }

    def snoozes(self) -> dict[FindingKey, Snooze]:
        z = t.snoozes
        with self._read() as db:
            rows = db.execute(
                sa.select(z.c.check_id, z.c.subject, z.c.cause, z.c.until, z.c.user, z.c.at)
                .where(self._mine(z))
                .order_by(z.c.id)
            ).all()
        return {
            (c, s, k): Snooze(
                until=datetime.fromisoformat(until), user=u, at=datetime.fromisoformat(at)
            )
            for c, s, k, until, u, at in rows
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
        fence: Fence | None = None,
    ) -> None:
        """Persist everything one cycle decided, atomically (see the module docstring).

        `accepted_domains` None leaves the stored drift baseline as it was (a failed run).
        With `fence`, nothing is written unless the lease is still the fence's (`LeaseLost`)."""
        with self._write() as db:
            self._check_fence(db, fence)
            if accepted_domains is not None:
                db.execute(sa.delete(t.tenant_domains).where(self._mine(t.tenant_domains)))
                if accepted_domains:
                    db.execute(
                        sa.insert(t.tenant_domains),
                        [
                            {"tenant": self.tenant, "name": name, "seen_at": _ts(now)}
                            for name in sorted(accepted_domains)
                        ],
                    )
                self._upsert(db, t.tenant_domains_seen, {"tenant": self.tenant}, {"at": _ts(now)})
            db.execute(
                sa.insert(t.runs).values(
                    tenant=self.tenant,
                    job=run.job,
                    started_at=_ts(run.started_at),
                    finished_at=_ts(run.finished_at),
                    ok=int(run.ok),
                    summary=json.dumps(run.summary) if run.summary is not None else None,
                )
            )
            self._upsert_many(
                db,
                t.findings,
                ("tenant", "check_id", "subject", "cause"),
                [
                    {
                        "tenant": self.tenant,
                        "check_id": check,
                        "subject": subject,
                        "cause": cause,
                        "open": int(st.open),
                        "severity_rank": st.finding.severity.rank,
                        "state": _state_to_json(st),
                    }
                    for (check, subject, cause), st in states.items()
                ],
            )
            self._upsert_many(
                db,
                t.certificates,
                ("tenant", "source", "fingerprint"),
                [
                    {
                        "tenant": self.tenant,
                        "source": cert.source,
                        "fingerprint": cert.fingerprint,
                        "snapshot": json.dumps(cert.to_json()),
                        "last_seen_at": _ts(now),
                        "first_seen_at": _ts(now),
                    }
                    for cert in certificates
                ],
                insert_only=("first_seen_at",),
            )
            self._enqueue(db, drafts, now)
            self._mark(db, run.job, run.started_at)

    def _upsert(
        self,
        db: Connection,
        table: sa.Table,
        key: Mapping[str, Any],
        values: Mapping[str, Any],
        *,
        insert_only: Mapping[str, Any] | None = None,
    ) -> None:
        """INSERT ... ON CONFLICT (key) DO UPDATE, in each dialect's own words."""
        row = {**key, **values, **(insert_only or {})}
        self._upsert_many(db, table, tuple(key), [row], insert_only=tuple(insert_only or ()))

    def _upsert_many(
        self,
        db: Connection,
        table: sa.Table,
        key: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
        *,
        insert_only: Sequence[str] = (),
    ) -> None:
        """Upsert `rows`: one statement, executed once per row by the driver.

        A statement built per row cost SQLAlchemy ~0.2 ms each to coerce and cache-key its
        literals: a second of the cycle for 5,000 endpoints' findings. Rows are keyed as the
        table is (the last of a repeated key wins, as it did row by row); the update takes
        the proposed row's values (`excluded`), except the `insert_only` columns."""
        if not rows:
            return
        unique = list({tuple(row[k] for k in key): row for row in rows}.values())
        stmt = self._insert(table)
        update = {c: stmt.excluded[c] for c in unique[0] if c not in key and c not in insert_only}
        db.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=update), unique)

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with the dialect's ON CONFLICT clauses (both dialects spell them alike)."""
        return (pg_dialect.insert if self._b.postgresql else sqlite_dialect.insert)(table)

    def _check_fence(self, db: Connection, fence: Fence | None) -> None:
        if fence is None:
            return
        row = db.execute(
            sa.select(t.leases)
            .where(self._mine(t.leases), t.leases.c.name == SCHEDULER)
            .with_for_update()
        ).first()
        current = _lease(row)
        if not holds(current, fence, now=self._clock(db)):
            who = f"replica {current.holder} (epoch {current.epoch})" if current else "nobody"
            raise LeaseLost(
                self._b.shown,
                f"{fence.holder} no longer leads tenant {self.tenant!r} (epoch {fence.epoch}; "
                f"the lease is now held by {who}); nothing was written",
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
        r = t.runs
        query = sa.select(r.c.job, r.c.started_at, r.c.finished_at, r.c.ok, r.c.summary).where(
            self._mine(r)
        )
        if job is not None:
            query = query.where(r.c.job == job)
        with self._read() as db:
            row = db.execute(query.order_by(r.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        name, started, finished, ok, summary = row
        return RunRecord(
            job=name,
            started_at=datetime.fromisoformat(started),
            finished_at=_dt(finished),
            ok=bool(ok),
            summary=json.loads(summary) if summary else None,
        )

    def last_job_run(self, job: str) -> datetime | None:
        j = t.job_marks
        with self._read() as db:
            value = db.execute(
                sa.select(j.c.last_run_at).where(self._mine(j), j.c.job == job)
            ).scalar()
        return datetime.fromisoformat(value) if value else None

    def mark_job(self, job: str, at: datetime, *, fence: Fence | None = None) -> None:
        with self._write() as db:
            self._check_fence(db, fence)
            self._mark(db, job, at)

    def _mark(self, db: Connection, job: str, at: datetime) -> None:
        self._upsert(db, t.job_marks, {"tenant": self.tenant, "job": job}, {"last_run_at": _ts(at)})

    def accepted_domains(self) -> frozenset[str] | None:
        """The tenant's accepted domains as the last run saw them; None before any run did."""
        with self._read() as db:
            seen = db.execute(
                sa.select(t.tenant_domains_seen.c.tenant).where(self._mine(t.tenant_domains_seen))
            ).first()
            if seen is None:
                return None
            names = db.execute(
                sa.select(t.tenant_domains.c.name).where(self._mine(t.tenant_domains))
            ).scalars()
            return frozenset(names)

    def latest_certificates(self) -> dict[str, CertificateSnapshot]:
        """The most recently seen certificate of every source (endpoint/address or file)."""
        c = t.certificates
        with self._read() as db:
            rows = db.execute(
                sa.select(c.c.source, c.c.snapshot)
                .where(self._mine(c))
                .order_by(c.c.last_seen_at, c.c.first_seen_at)
            ).all()
        latest: dict[str, CertificateSnapshot] = {}
        for source, snapshot in rows:
            latest[source] = CertificateSnapshot.from_json(json.loads(snapshot))
        return latest

    def _require_known(self, db: Connection, key: FindingKey) -> None:
        f = t.findings
        check, subject, cause = key
        row = db.execute(
            sa.select(sa.literal(1)).where(
                self._mine(f), f.c.check_id == check, f.c.subject == subject, f.c.cause == cause
            )
        ).first()
        if row is None:
            raise StateError(self.where, f"no finding {'/'.join(k for k in key if k)!r}")

    def acknowledge(self, key: FindingKey, user: str, now: datetime) -> None:
        self.acknowledge_all([key], user, now)

    def acknowledge_all(self, keys: Sequence[FindingKey], user: str, now: datetime) -> None:
        """Every finding of a grouped alert, in one transaction: all of them or none."""
        with self._write() as db:
            for item in keys:
                self._require_known(db, item)
            db.execute(
                sa.insert(t.acknowledgements),
                [
                    {
                        "tenant": self.tenant,
                        "check_id": c,
                        "subject": s,
                        "cause": k,
                        "user": user,
                        "at": _ts(now),
                    }
                    for c, s, k in keys
                ],
            )

    def snooze(self, key: FindingKey, until: datetime, user: str, now: datetime) -> None:
        self.snooze_all([key], until, user, now)

    def snooze_all(
        self, keys: Sequence[FindingKey], until: datetime, user: str, now: datetime
    ) -> None:
        """Every finding of a grouped alert, in one transaction: all of them or none."""
        if until <= now:
            raise StateError(self.where, "a snooze must end in the future")
        with self._write() as db:
            for item in keys:
                self._require_known(db, item)
            db.execute(
                sa.insert(t.snoozes),
                [
                    {
                        "tenant": self.tenant,
                        "check_id": c,
                        "subject": s,
                        "cause": k,
                        "until": _ts(until),
                        "user": user,
                        "at": _ts(now),
                    }
                    for c, s, k in keys
                ],
            )

    def keys_for_event(self, event_id: str) -> list[FindingKey]:
        """The findings an alert message was about (its buttons act on all of them)."""
        o = t.outbox
        with self._read() as db:
            texts = db.execute(
                sa.select(o.c["keys"])
                .where(self._mine(o), o.c.event_id == event_id)
                .order_by(o.c.seq)
            ).scalars()
            out: list[FindingKey] = []
            for text in texts:
                for check, subject, cause in json.loads(text):
                    if (check, subject, cause) not in out:
                        out.append((check, subject, cause))
        return out

    # ----------------------------------------------------------------- outbox

    def enqueue(
        self, drafts: Sequence[OutboxDraft], now: datetime, *, fence: Fence | None = None
    ) -> None:
        with self._write() as db:
            self._check_fence(db, fence)
            self._enqueue(db, drafts, now)

    def record_digest(
        self, draft: OutboxDraft, now: datetime, *, fence: Fence | None = None
    ) -> None:
        """Queue a digest and mark the digest job done, together (fenced like a cycle)."""
        with self._write() as db:
            self._check_fence(db, fence)
            self._enqueue(db, [draft], now)
            self._mark(db, "digest", now)

    def _enqueue(self, db: Connection, drafts: Sequence[OutboxDraft], now: datetime) -> None:
        if not drafts:
            return
        insert = self._insert
        rows = [
            {
                "tenant": self.tenant,
                "id": d.id,
                "event_id": d.event_id,
                "action": d.action,
                "channel": d.channel or self.channel,
                "text": d.text,
                "blocks": json.dumps(list(d.blocks)),
                "reply_to": d.reply_to,
                "keys": json.dumps([list(k) for k in d.keys]),
                "created_at": _ts(now),
            }
            for d in drafts
        ]
        # one statement per draft keeps queue order (seq) equal to the drafts' order
        for row in rows:
            db.execute(insert(t.outbox).values(row).on_conflict_do_nothing())

    def _pending_query(self) -> sa.Select[Any]:
        o = t.outbox
        return (
            sa.select(*_OUTBOX_COLUMNS)
            .where(self._mine(o), o.c.delivered_at.is_(None), o.c.failed_at.is_(None))
            .order_by(o.c.seq)
        )

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Undelivered, not permanently failed messages in the order they were queued."""
        with self._read() as db:
            rows = db.execute(self._pending_query().limit(limit)).all()
        return [_message(row) for row in rows]

    @contextlib.contextmanager
    def claim_next(self, worker: str, *, hold_seconds: float = 120.0) -> Iterator[Claim]:
        """Claim the outbox head for `worker` while the `with` block delivers it.

        PostgreSQL: the head row is locked (`FOR UPDATE SKIP LOCKED`) until `record_ts`,
        `mark_delivered` or `record_attempt_failure` for it commits (or the block ends); a
        frozen holder is cut off after `hold_seconds` by idle_in_transaction_session_timeout.
        sqlite: the head is marked claimed for `hold_seconds` in a short write transaction."""
        with self._claim(worker, None, hold_seconds) as claim:
            yield claim

    @contextlib.contextmanager
    def claim(self, seq: int, worker: str, *, hold_seconds: float = 120.0) -> Iterator[Claim]:
        """Claim message `seq` for `worker` while the `with` block delivers it, like
        `claim_next` does the head: the delivery worker keeps order per thread and per
        channel, not across the whole outbox, so it claims the message it chose. `busy`: another
        worker holds it; `message` None and not busy: it is no longer waiting."""
        with self._claim(worker, seq, hold_seconds) as claim:
            yield claim

    @contextlib.contextmanager
    def _claim(self, worker: str, seq: int | None, hold_seconds: float) -> Iterator[Claim]:
        if self._b.postgresql:
            with self._claim_locked(worker, seq, hold_seconds) as claim:
                yield claim
            return
        with self._claim_marked(worker, seq, hold_seconds) as claim:
            yield claim

    def _waiting(self, seq: int | None) -> sa.ColumnElement[bool]:
        o = t.outbox
        where = sa.and_(self._mine(o), o.c.delivered_at.is_(None), o.c.failed_at.is_(None))
        return where if seq is None else sa.and_(where, o.c.seq == seq)

    def _lock(self, conn: Connection, seq: int | None, hold_seconds: float) -> tuple[Any, bool]:
        """In a PostgreSQL transaction: (the row now locked, or None; whether one waits)."""
        conn.exec_driver_sql(
            f"SET LOCAL idle_in_transaction_session_timeout = {int(hold_seconds * 1000)}"
        )
        first = conn.execute(sa.select(sa.func.min(t.outbox.c.seq)).where(self._waiting(seq)))
        head = first.scalar()
        if head is None:
            return None, False
        row = conn.execute(
            sa.select(*_OUTBOX_COLUMNS)
            .where(self._waiting(seq))
            .order_by(t.outbox.c.seq)
            .limit(1)
            .with_for_update(skip_locked=True)
        ).first()
        if row is None or row.seq != head:
            return None, True  # another replica is delivering it (the head, or this one)
        return row, True

    @contextlib.contextmanager
    def _claim_locked(self, worker: str, seq: int | None, hold_seconds: float) -> Iterator[Claim]:
        try:
            conn = self._b.engine.connect()
        except SQLAlchemyError as err:
            raise self._b.error(err, "cannot read the outbox") from None
        held = None
        try:
            try:
                trans = conn.begin()
                row, waiting = self._lock(conn, seq, hold_seconds)
            except SQLAlchemyError as err:
                raise self._b.error(err, "cannot claim from the outbox") from None
            if row is None:
                yield Claim(None, busy=waiting)
                return
            held = row.seq
            self._claims[held] = (conn, trans)
            self._holds[held] = hold_seconds
            yield Claim(_message(row))
        finally:
            if held is not None:
                self._claims.pop(held, None)
                self._holds.pop(held, None)
            with contextlib.suppress(SQLAlchemyError):
                if conn.in_transaction():
                    conn.rollback()
            conn.close()

    @contextlib.contextmanager
    def _claim_marked(self, worker: str, seq: int | None, hold_seconds: float) -> Iterator[Claim]:
        o = t.outbox
        now = time.time()
        me = _claimant(worker)
        with self._write() as db:
            row = db.execute(
                sa.select(*_OUTBOX_COLUMNS, o.c.claimed_by, o.c.claimed_until)
                .where(self._waiting(seq))
                .order_by(o.c.seq)
                .limit(1)
            ).first()
            if (
                row is not None
                and row.claimed_by not in (None, me)
                and (row.claimed_until or 0.0) > now
                and _claimant_alive(row.claimed_by)
            ):
                row, busy = None, True
            else:
                busy = False
            if row is not None:
                db.execute(
                    sa.update(o)
                    .where(o.c.seq == row.seq)
                    .values(claimed_by=me, claimed_until=now + hold_seconds)
                )
        if row is None:
            yield Claim(None, busy=busy)
            return
        try:
            yield Claim(_message(row))
        finally:
            with contextlib.suppress(StateError), self._write() as db:
                db.execute(
                    sa.update(o)
                    .where(o.c.seq == row.seq, o.c.claimed_by == me)
                    .values(claimed_by=None, claimed_until=None)
                )

    @contextlib.contextmanager
    def _outbox_write(self, seq: int) -> Iterator[Connection]:
        """A write to message `seq`: inside its claim's transaction (committed here, which ends
        the claim) when this process holds one, else a transaction of its own."""
        held = self._claims.pop(seq, None)
        if held is None:
            with self._write() as db:
                yield db
            return
        conn, trans = held
        try:
            yield conn
            trans.commit()
        except SQLAlchemyError as err:
            raise self._b.error(err, "cannot write") from None

    def posted_message(self, event_id: str) -> tuple[str, str] | None:
        """(channel, ts) of the top-level message posted for `event_id`, once Slack confirmed it."""
        o = t.outbox
        with self._read() as db:
            row = db.execute(
                sa.select(o.c.channel, o.c.ts)
                .where(
                    self._mine(o),
                    o.c.event_id == event_id,
                    o.c.action == "post",
                    o.c.ts.is_not(None),
                )
                .order_by(o.c.seq)
                .limit(1)
            ).first()
        return (row[0], row[1]) if row else None

    def record_ts(self, seq: int, ts: str) -> None:
        """Step 1 after Slack confirmed: remember its ts (a restart then never posts again)."""
        with self._outbox_write(seq) as db:
            db.execute(sa.update(t.outbox).where(t.outbox.c.seq == seq).values(ts=ts))

    def mark_delivered(self, seq: int, now: datetime) -> None:
        """Step 2: the message leaves the outbox."""
        with self._outbox_write(seq) as db:
            db.execute(
                sa.update(t.outbox).where(t.outbox.c.seq == seq).values(delivered_at=_ts(now))
            )

    def record_attempt_start(self, seq: int, now: datetime) -> bool:
        """Committed before a post is sent: if no clear answer follows (timeout, lost
        connection, kill -9), the next attempt looks for the message in Slack first.

        Under a PostgreSQL claim, the commit ends the row lock; it is taken again at once.
        False when another replica took the message in that moment (or it left the queue):
        then this one must not post it (the other looks it up first, and delivers it)."""
        o = t.outbox
        stamp = _ts(now)
        update = sa.update(o).where(o.c.seq == seq).values(attempted_at=stamp)
        held = self._claims.get(seq)
        if held is None:
            with self._write() as db:
                db.execute(update)
            return True
        conn, trans = held
        try:
            conn.execute(update)
            trans.commit()
            again = conn.begin()
            row, _waiting = self._lock(conn, seq, self._holds.get(seq, 120.0))
        except SQLAlchemyError as err:
            self._claims.pop(seq, None)
            raise self._b.error(err, "cannot write") from None
        if row is None or row.attempted_at != stamp:
            # another replica took it in that moment (or took it and posted it already)
            self._claims.pop(seq, None)
            again.rollback()
            return False
        self._claims[seq] = (conn, again)
        return True

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
        Slack clearly did not, and `attempted_at` is cleared (a permanent failure clears it
        too). `outage`: a 5xx or network failure, counted in `failures` (the backoff
        exponent); a 429 is not."""
        o = t.outbox
        values: dict[str, Any] = {"attempts": o.c.attempts + 1, "last_error": error[:500]}
        if next_attempt_at is None:
            values["failed_at"] = _ts(now)
            values["attempted_at"] = None
        else:
            values["next_attempt_at"] = _ts(next_attempt_at)
            if outage:
                values["failures"] = o.c.failures + 1
            if not unclear:
                values["attempted_at"] = None
        with self._outbox_write(seq) as db:
            db.execute(sa.update(o).where(o.c.seq == seq).values(values))

    def reset_backoff(self) -> int:
        """Slack answered again (a success, or a restart): every waiting message may be tried
        now, with its failure count back at 0. Returns how many rows were waiting.

        On PostgreSQL a message another replica is delivering right now is left to it (SKIP
        LOCKED): this never waits for another replica's post."""
        o = t.outbox
        waiting = sa.and_(
            self._waiting(None), sa.or_(o.c.next_attempt_at.is_not(None), o.c.failures > 0)
        )
        with self._write() as db:
            if self._b.postgresql:
                free = (
                    sa.select(o.c.seq).where(waiting).with_for_update(skip_locked=True)
                ).scalar_subquery()
                where: sa.ColumnElement[bool] = o.c.seq.in_(free)
            else:
                where = waiting
            done = db.execute(sa.update(o).where(where).values(next_attempt_at=None, failures=0))
            return int(done.rowcount or 0)

    def oldest_pending_at(self) -> datetime | None:
        """When the oldest message still waiting in the outbox was queued (None: none waits)."""
        o = t.outbox
        with self._read() as db:
            value = db.execute(
                sa.select(sa.func.min(o.c.created_at)).where(
                    self._mine(o), o.c.delivered_at.is_(None), o.c.failed_at.is_(None)
                )
            ).scalar()
        return _dt(value) if value else None

    def check_writable(self) -> None:
        """Write one row back as it was; raises `StateError` when a write would fail (a
        read-only file or folder, a full disk, a database that refuses): /readyz asks."""
        with self._write() as db:
            db.execute(sa.text("UPDATE alembic_version SET version_num = version_num"))

    def outbox_counts(self) -> dict[str, int]:
        o = t.outbox
        delivered = o.c.delivered_at.is_not(None)
        failed = o.c.failed_at.is_not(None)
        with self._read() as db:
            row = db.execute(
                sa.select(
                    sa.func.count().filter(delivered),
                    sa.func.count().filter(failed),
                    sa.func.count().filter(sa.and_(~delivered, ~failed)),
                ).where(self._mine(o))
            ).one()
        return {"delivered": row[0] or 0, "failed": row[1] or 0, "pending": row[2] or 0}

    # ----------------------------------------------------------------- leadership

    def _clock(self, db: Connection) -> float:
        """Now by the store's clock (PostgreSQL's, shared by every replica; else this host's)."""
        if self._b.postgresql:
            value = db.execute(sa.text("SELECT EXTRACT(EPOCH FROM clock_timestamp())")).scalar()
            return float(value) if value is not None else time.time()
        return time.time()

    def try_lead(self, replica: str, *, lease_seconds: float) -> Lease | None:
        """Renew or take the tenant's scheduler lease for `replica` if it is free or ours.

        Returns the lease as it now stands (ours when `.holder == replica`), or None when two
        replicas created the very first lease at once and this one lost (ask again)."""
        l = t.leases  # noqa: E741 - the table's initial, like t.outbox's o
        key = (self._mine(l), l.c.name == SCHEDULER)
        with self._write() as db:
            current = _lease(db.execute(sa.select(l).where(*key).with_for_update()).first())
            new = decide(current, me=replica, now=self._clock(db), lease_seconds=lease_seconds)
            if new is None:
                return current
            values = {
                "holder": new.holder,
                "epoch": new.epoch,
                "since": new.since,
                "renewed_at": new.renewed_at,
                "expires_at": new.expires_at,
            }
            if current is not None:
                db.execute(sa.update(l).where(*key).values(values))
                return new
            insert = self._insert
            db.execute(
                insert(l)
                .values(tenant=self.tenant, name=SCHEDULER, **values)
                .on_conflict_do_nothing()
            )
            # re-read: another replica may have created the first lease at the same moment
            row = db.execute(sa.select(l).where(*key)).first()
            won = _lease(row)
            return new if won is not None and won.holder == replica else None

    def release_lead(self, replica: str) -> None:
        """A clean stop: end `replica`'s lease now, so a follower takes over at its next check."""
        l = t.leases  # noqa: E741
        key = (self._mine(l), l.c.name == SCHEDULER, l.c.holder == replica)
        with self._write() as db:
            current = _lease(db.execute(sa.select(l).where(*key).with_for_update()).first())
            if current is None:
                return
            done = released(current, now=self._clock(db))
            db.execute(
                sa.update(l)
                .where(*key)
                .values(renewed_at=done.renewed_at, expires_at=done.expires_at)
            )

    def leader(self) -> LeaderRecord | None:
        """Which replica leads this tenant's scheduled checks and since when (None: never led)."""
        l = t.leases  # noqa: E741
        with self._read() as db:
            current = _lease(
                db.execute(sa.select(l).where(self._mine(l), l.c.name == SCHEDULER)).first()
            )
            now = self._clock(db)
        if current is None:
            return None
        return LeaderRecord(
            replica=current.holder,
            since=datetime.fromtimestamp(current.since, UTC),
            until=datetime.fromtimestamp(current.expires_at, UTC),
            epoch=current.epoch,
            active=current.expires_at > now,
        )


def _prepare(backend: _Backend, tenant: str, *, migrate: bool) -> None:
    if migrate:
        upgrade_schema(backend, tenant)
        return
    head, _known = _known_revisions()
    with backend.engine.connect() as conn:
        now = _revision(conn, backend)
    if now != head:
        raise StateError(
            backend.shown,
            f"schema {now or 'before 0001'} is older than {head}: run `relaycheck state migrate`",
        )
