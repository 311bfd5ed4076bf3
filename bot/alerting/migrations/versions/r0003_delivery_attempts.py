"""Delivery attempts: what the outbox worker needs for exactly-once delivery and backoff.

`attempted_at` (ISO 8601 text, like the outbox's other times) is set before a post is sent and
kept while its outcome is unclear (a timeout, a lost connection, a 5xx, a kill -9): the next
attempt looks for the message in Slack before posting it again. `failures` counts the 5xx and
network failures since the last success (the backoff exponent; a 429 does not count).

`schema_version` is set to 5, as 0002 set it to 4: a relaycheck that knows only 0002 refuses
this database as "written by a newer relaycheck" (it would never clear `attempted_at`).

Revision ID: 0003_delivery_attempts
Revises: 0002_tenants_ha
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_delivery_attempts"
down_revision = "0002_tenants_ha"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN: both dialects add a column in place (no table rebuild)
    op.add_column("outbox", sa.Column("attempted_at", sa.Text))
    op.add_column("outbox", sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE schema_version SET version = 5")


def downgrade() -> None:
    raise NotImplementedError("relaycheck never downgrades a state (0002 cannot be undone either)")
