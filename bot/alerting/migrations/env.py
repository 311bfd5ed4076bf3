"""Alembic's environment: always online, on the connection the store hands over.

The store opens the transaction (and on PostgreSQL takes an advisory lock, so two replicas
starting together migrate once); this file only points Alembic at that connection.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
