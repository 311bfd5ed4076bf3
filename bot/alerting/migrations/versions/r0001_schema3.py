"""The pre-Alembic state file's schema 3, created only where missing.

A state file written before Alembic already has these tables (and `schema_version`); an empty
database has none. Creating each missing table makes both end at the same place, so old files
need no special stamping step.

Revision ID: 0001_schema3
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_schema3"
down_revision = None
branch_labels = None
depends_on = None


def _tables() -> list[sa.Table]:
    meta = sa.MetaData()
    return [
        sa.Table(
            "runs",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("job", sa.Text, nullable=False),
            sa.Column("started_at", sa.Text, nullable=False),
            sa.Column("finished_at", sa.Text),
            sa.Column("ok", sa.Integer, nullable=False),
            sa.Column("summary", sa.Text),
        ),
        sa.Table(
            "findings",
            meta,
            sa.Column("check_id", sa.Text, primary_key=True),
            sa.Column("subject", sa.Text, primary_key=True),
            sa.Column("cause", sa.Text, primary_key=True),
            sa.Column("open", sa.Integer, nullable=False),
            sa.Column("severity_rank", sa.Integer, nullable=False),
            sa.Column("state", sa.Text, nullable=False),
        ),
        sa.Table(
            "acknowledgements",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("check_id", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("cause", sa.Text, nullable=False),
            sa.Column("user", sa.Text, nullable=False),
            sa.Column("at", sa.Text, nullable=False),
        ),
        sa.Table(
            "snoozes",
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("check_id", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("cause", sa.Text, nullable=False),
            sa.Column("until", sa.Text, nullable=False),
            sa.Column("user", sa.Text, nullable=False),
            sa.Column("at", sa.Text, nullable=False),
        ),
        sa.Table(
            "certificates",
            meta,
            sa.Column("source", sa.Text, primary_key=True),
            sa.Column("fingerprint", sa.Text, primary_key=True),
            sa.Column("snapshot", sa.Text, nullable=False),
            sa.Column("first_seen_at", sa.Text, nullable=False),
            sa.Column("last_seen_at", sa.Text, nullable=False),
        ),
        sa.Table(
            "outbox",
            meta,
            sa.Column("seq", sa.Integer, primary_key=True),
            sa.Column("id", sa.Text, nullable=False, unique=True),
            sa.Column("event_id", sa.Text, nullable=False),
            sa.Column("action", sa.Text, nullable=False),
            sa.Column("channel", sa.Text, nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("blocks", sa.Text, nullable=False),
            sa.Column("reply_to", sa.Text),
            sa.Column("keys", sa.Text, nullable=False, server_default="[]"),
            sa.Column("created_at", sa.Text, nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
            sa.Column("next_attempt_at", sa.Text),
            sa.Column("ts", sa.Text),
            sa.Column("delivered_at", sa.Text),
            sa.Column("failed_at", sa.Text),
            sa.Column("last_error", sa.Text),
            sqlite_autoincrement=True,
        ),
        sa.Table(
            "job_marks",
            meta,
            sa.Column("job", sa.Text, primary_key=True),
            sa.Column("last_run_at", sa.Text, nullable=False),
        ),
        sa.Table(
            "tenant_domains",
            meta,
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("seen_at", sa.Text, nullable=False),
        ),
        sa.Table(
            "tenant_domains_seen",
            meta,
            sa.Column("id", sa.Integer, sa.CheckConstraint("id = 1"), primary_key=True),
            sa.Column("at", sa.Text),
        ),
        sa.Table("schema_version", meta, sa.Column("version", sa.Integer, nullable=False)),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    for table in _tables():
        if table.name not in existing:
            table.create(bind)
    if "schema_version" not in existing:
        op.execute("INSERT INTO schema_version (version) VALUES (3)")
    else:
        op.execute("UPDATE schema_version SET version = 3")


def downgrade() -> None:
    raise NotImplementedError("the first schema has nothing to go back to")
