"""The state schema's one migration history (Alembic), shared by sqlite and PostgreSQL.

Why Alembic and not a runner of our own: one history must produce the same tables on two
dialects (sqlite's table rebuilds versus PostgreSQL's ALTER), record where a database stands
(`alembic_version`) and apply each step inside the caller's transaction; Alembic does all of
that. The store runs it programmatically (`bot.alerting.store.migrate`); no `alembic.ini` is
needed. Revisions are frozen: they describe tables with their own `sqlalchemy` objects and
never import the live schema (`bot.alerting.schema`), so a later change there cannot rewrite
history.

    0001_schema3        the tables of the pre-Alembic state file (its schema 3), created when
                        missing: an old file is adopted as it is, an empty database gets them
    0002_tenants_ha     every row keyed by tenant (old rows adopted by the opening tenant),
                        outbox claim columns, the leadership lease table
    0003_delivery_attempts  outbox.attempted_at (a post with an unclear outcome, looked up
                        before posting again) and outbox.failures (the backoff exponent)
"""
