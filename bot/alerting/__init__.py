"""The alert pipeline: lifecycle events rendered into Slack messages (`alerts`, pure), the
scheduled cycle that sequences scan -> lifecycle -> render -> store (`cycle`), the state store
with its outbox (`store`, on sqlite or PostgreSQL: `schema` describes the tables, `migrations`
is their one Alembic history), the pure lease decision among replicas (`lease`) and the outbox
worker that delivers to Slack (`delivery`).

May import the shared modules (`bot.records`, `bot.mrkdwn`) and `checks`; never the Slack app,
the runtime or the CLI. Rendering (`alerts`) imports no store; the store imports no rendering.
"""
