"""Every row keyed by tenant; outbox claims; the leadership lease.

Rows written before tenants existed belong to the tenant whose configuration opens the store
first (the store passes its `[tenant] name` as the `tenant` attribute); that is the only
tenant an old single-config state file ever had. Each keyed table is rebuilt (create, copy,
drop, rename) rather than altered: sqlite cannot change a primary key in place, and one way
for both dialects keeps the history single.

`schema_version` is kept and set to 4 so that a relaycheck from before Alembic refuses this
file as "written by a newer relaycheck" instead of writing rows without a tenant.

Revision ID: 0002_tenants_ha
Revises: 0001_schema3
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0002_tenants_ha"
down_revision = "0001_schema3"
branch_labels = None
depends_on = None

_T = sa.Text


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant", _T, nullable=False)


def _keyed(meta: sa.MetaData) -> list[tuple[sa.Table, list[str]]]:
    """(new table, the old columns copied into it) per tenant-keyed table."""
    return [
        (
            sa.Table(
                "runs__new",
                meta,
                sa.Column("id", sa.Integer, primary_key=True),
                _tenant(),
                sa.Column("job", _T, nullable=False),
                sa.Column("started_at", _T, nullable=False),
                sa.Column("finished_at", _T),
                sa.Column("ok", sa.Integer, nullable=False),
                sa.Column("summary", _T),
            ),
            ["id", "job", "started_at", "finished_at", "ok", "summary"],
        ),
        (
            sa.Table(
                "findings__new",
                meta,
                sa.Column("tenant", _T, primary_key=True),
                sa.Column("check_id", _T, primary_key=True),
                sa.Column("subject", _T, primary_key=True),
                sa.Column("cause", _T, primary_key=True),
                sa.Column("open", sa.Integer, nullable=False),
                sa.Column("severity_rank", sa.Integer, nullable=False),
                sa.Column("state", _T, nullable=False),
            ),
            ["check_id", "subject", "cause", "open", "severity_rank", "state"],
        ),
        (
            sa.Table(
                "acknowledgements__new",
                meta,
                sa.Column("id", sa.Integer, primary_key=True),
                _tenant(),
                sa.Column("check_id", _T, nullable=False),
                sa.Column("subject", _T, nullable=False),
                sa.Column("cause", _T, nullable=False),
                sa.Column("user", _T, nullable=False),
                sa.Column("at", _T, nullable=False),
            ),
            ["id", "check_id", "subject", "cause", "user", "at"],
        ),
        (
            sa.Table(
                "snoozes__new",
                meta,
                sa.Column("id", sa.Integer, primary_key=True),
                _tenant(),
                sa.Column("check_id", _T, nullable=False),
                sa.Column("subject", _T, nullable=False),
                sa.Column("cause", _T, nullable=False),
                sa.Column("until", _T, nullable=False),
                sa.Column("user", _T, nullable=False),
                sa.Column("at", _T, nullable=False),
            ),
            ["id", "check_id", "subject", "cause", "until", "user", "at"],
        ),
        (
            sa.Table(
                "certificates__new",
                meta,
                sa.Column("tenant", _T, primary_key=True),
                sa.Column("source", _T, primary_key=True),
                sa.Column("fingerprint", _T, primary_key=True),
                sa.Column("snapshot", _T, nullable=False),
                sa.Column("first_seen_at", _T, nullable=False),
                sa.Column("last_seen_at", _T, nullable=False),
            ),
            ["source", "fingerprint", "snapshot", "first_seen_at", "last_seen_at"],
        ),
        (
            sa.Table(
                "outbox__new",
                meta,
                sa.Column("seq", sa.Integer, primary_key=True),
                _tenant(),
                sa.Column("id", _T, nullable=False),
                sa.Column("event_id", _T, nullable=False),
                sa.Column("action", _T, nullable=False),
                sa.Column("channel", _T, nullable=False),
                sa.Column("text", _T, nullable=False),
                sa.Column("blocks", _T, nullable=False),
                sa.Column("reply_to", _T),
                sa.Column("keys", _T, nullable=False, server_default="[]"),
                sa.Column("created_at", _T, nullable=False),
                sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
                sa.Column("next_attempt_at", _T),
                sa.Column("ts", _T),
                sa.Column("delivered_at", _T),
                sa.Column("failed_at", _T),
                sa.Column("last_error", _T),
                # sqlite's claim (PostgreSQL claims with row locks): who, until when (epoch s)
                sa.Column("claimed_by", _T),
                sa.Column("claimed_until", sa.Float),
                sa.UniqueConstraint("tenant", "id", name="outbox_tenant_id"),
                sqlite_autoincrement=True,
            ),
            [
                "seq",
                "id",
                "event_id",
                "action",
                "channel",
                "text",
                "blocks",
                "reply_to",
                "keys",
                "created_at",
                "attempts",
                "next_attempt_at",
                "ts",
                "delivered_at",
                "failed_at",
                "last_error",
            ],
        ),
        (
            sa.Table(
                "job_marks__new",
                meta,
                sa.Column("tenant", _T, primary_key=True),
                sa.Column("job", _T, primary_key=True),
                sa.Column("last_run_at", _T, nullable=False),
            ),
            ["job", "last_run_at"],
        ),
        (
            sa.Table(
                "tenant_domains__new",
                meta,
                sa.Column("tenant", _T, primary_key=True),
                sa.Column("name", _T, primary_key=True),
                sa.Column("seen_at", _T, nullable=False),
            ),
            ["name", "seen_at"],
        ),
        (
            sa.Table(
                "tenant_domains_seen__new",
                meta,
                sa.Column("tenant", _T, primary_key=True),
                sa.Column("at", _T),
            ),
            ["at"],
        ),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    adopt = str(context.config.attributes.get("tenant") or "default")
    meta = sa.MetaData()
    for new, columns in _keyed(meta):
        name = new.name.removesuffix("__new")
        new.create(bind)
        old = sa.Table(name, sa.MetaData(), *(sa.Column(c) for c in columns))
        select = sa.select(sa.literal(adopt, _T).label("tenant"), *(old.c[c] for c in columns))
        bind.execute(new.insert().from_select(["tenant", *columns], select))
        op.drop_table(name)
        op.rename_table(new.name, name)
        if bind.dialect.name == "postgresql":
            # copied ids keep their values; the new serial must continue after them
            serial = "seq" if name == "outbox" else "id" if "id" in columns[:1] else None
            if serial is not None:
                table = sa.table(name, sa.column(serial))
                highest = sa.select(sa.func.max(table.c[serial])).scalar_subquery()
                bind.execute(
                    sa.select(
                        sa.func.setval(
                            sa.func.pg_get_serial_sequence(name, serial),
                            sa.func.coalesce(highest, 0) + 1,
                            False,
                        )
                    )
                )
    op.create_index("outbox_pending", "outbox", ["tenant", "delivered_at", "failed_at", "seq"])
    op.create_index("outbox_event", "outbox", ["tenant", "event_id"])
    op.create_index("runs_tenant", "runs", ["tenant", "job", "id"])
    op.create_index("acknowledgements_tenant", "acknowledgements", ["tenant"])
    op.create_index("snoozes_tenant", "snoozes", ["tenant"])
    op.create_table(
        "leases",
        sa.Column("tenant", _T, primary_key=True),
        sa.Column("name", _T, primary_key=True),
        sa.Column("holder", _T, nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        # seconds since the epoch, by the database's clock on PostgreSQL
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("renewed_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.execute("UPDATE schema_version SET version = 4")


def downgrade() -> None:
    raise NotImplementedError("tenant keys cannot be removed without losing tenants apart")
