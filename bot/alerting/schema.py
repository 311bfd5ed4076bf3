"""The state tables as SQLAlchemy Core objects: what the store's queries are written against.

This is the schema AFTER the newest migration (`bot/alerting/migrations`); the migrations are
what creates it, this module only describes it for queries (a test compares the two). Times
are ISO 8601 text (as the state file always had them) except the lease and claim times, which
are seconds since the epoch so that they compare as numbers in SQL on both dialects.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
_T = sa.Text

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant", _T, nullable=False),
    sa.Column("job", _T, nullable=False),
    sa.Column("started_at", _T, nullable=False),
    sa.Column("finished_at", _T),
    sa.Column("ok", sa.Integer, nullable=False),
    sa.Column("summary", _T),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("tenant", _T, primary_key=True),
    sa.Column("check_id", _T, primary_key=True),
    sa.Column("subject", _T, primary_key=True),
    sa.Column("cause", _T, primary_key=True),
    sa.Column("open", sa.Integer, nullable=False),
    sa.Column("severity_rank", sa.Integer, nullable=False),
    sa.Column("state", _T, nullable=False),
)

acknowledgements = sa.Table(
    "acknowledgements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant", _T, nullable=False),
    sa.Column("check_id", _T, nullable=False),
    sa.Column("subject", _T, nullable=False),
    sa.Column("cause", _T, nullable=False),
    sa.Column("user", _T, nullable=False),
    sa.Column("at", _T, nullable=False),
)

snoozes = sa.Table(
    "snoozes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant", _T, nullable=False),
    sa.Column("check_id", _T, nullable=False),
    sa.Column("subject", _T, nullable=False),
    sa.Column("cause", _T, nullable=False),
    sa.Column("until", _T, nullable=False),
    sa.Column("user", _T, nullable=False),
    sa.Column("at", _T, nullable=False),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("tenant", _T, primary_key=True),
    sa.Column("source", _T, primary_key=True),
    sa.Column("fingerprint", _T, primary_key=True),
    sa.Column("snapshot", _T, nullable=False),
    sa.Column("first_seen_at", _T, nullable=False),
    sa.Column("last_seen_at", _T, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("tenant", _T, nullable=False),
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
    sa.Column("claimed_by", _T),
    sa.Column("claimed_until", sa.Float),
    # a post sent without a clear answer (looked up before posting again); 5xx/network
    # failures since the last success (the backoff exponent)
    sa.Column("attempted_at", _T),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.UniqueConstraint("tenant", "id", name="outbox_tenant_id"),
    sqlite_autoincrement=True,
)

job_marks = sa.Table(
    "job_marks",
    metadata,
    sa.Column("tenant", _T, primary_key=True),
    sa.Column("job", _T, primary_key=True),
    sa.Column("last_run_at", _T, nullable=False),
)

tenant_domains = sa.Table(
    "tenant_domains",
    metadata,
    sa.Column("tenant", _T, primary_key=True),
    sa.Column("name", _T, primary_key=True),
    sa.Column("seen_at", _T, nullable=False),
)

tenant_domains_seen = sa.Table(
    "tenant_domains_seen",
    metadata,
    sa.Column("tenant", _T, primary_key=True),
    sa.Column("at", _T),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("tenant", _T, primary_key=True),
    sa.Column("name", _T, primary_key=True),
    sa.Column("holder", _T, nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("renewed_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)
