"""App Home: the current state of connectors, certificates, domains and the last scan.

Rendered from what is already known (the tenant files and the store's latest scan), never by
probing: opening a tab must not start network traffic to the on-prem servers. Shown only to
users the access policy allows (`bot.slack.access`, the same as `/relaycheck status`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerting.delivery import slack_error
from bot.slack.blocks import home_denied_view, home_view
from bot.slack.listeners.common import Deps, language_for
from checks.errors import RelaycheckError
from checks.i18n import using
from checks.model import AcceptedDomain
from checks.probes.exports import load_tenant
from checks.rules.tenant import TenantFacts

_log = logging.getLogger("relaycheck.slack")


async def render_home(deps: Deps) -> View:
    facts: TenantFacts | None
    try:
        facts = load_tenant(deps.config)
    except RelaycheckError as err:
        _log.warning("App Home: tenant facts unavailable: %s", err)
        facts = None
    store = deps.store
    seen = store.accepted_domains() if store is not None else None
    if facts is not None and seen is not None and deps.config.microsoft365.enabled:
        # Graph decides what is accepted; the last scan asked it (a tab never asks itself)
        known = {d.name: d for d in facts.accepted_domains}
        facts = replace(
            facts,
            accepted_domains=tuple(
                known.get(name, AcceptedDomain(name=name, source="microsoft-graph"))
                for name in sorted(seen)
            ),
        )
    return home_view(
        deps.config,
        facts=facts,
        certificates=store.latest_certificates() if store is not None else {},
        findings=store.open_findings(now=deps.clock()) if store is not None else [],
        last_run=store.last_run() if store is not None else None,
        readiness=store.last_run("certificates") if store is not None else None,
        now=deps.clock(),
        leader=store.leader() if store is not None else None,
    )


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("app_home_opened")
    async def home_opened(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event.get("user")
        if not isinstance(user, str) or not user:
            return
        # the same policy as /relaycheck status (bot.slack.access); a denied user gets a view
        # that says so (it also replaces whatever an earlier, allowed visit left on the tab)
        with using(await language_for(deps, client, user)):
            if await deps.access.home_allowed(client, user=user):
                view = await render_home(deps)
            else:
                view = home_denied_view()
        try:
            await client.views_publish(user_id=user, view=view)
        except SlackApiError as err:
            _log.warning("App Home not published: %s", slack_error(err).code)
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            _log.warning("App Home not published: %s", type(err).__name__)
