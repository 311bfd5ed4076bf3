"""Tenant facts from every configured source: config, PowerShell exports, Microsoft Graph.

Each source can fail on its own without stopping the others: a broken export becomes one
`tenant-source` finding and the rest runs with what is left; a Graph failure likewise. When
Graph answers it is the freshest truth, so its accepted domains replace the config's list
(config entries it does not confirm become drift findings instead of silently counting).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from checks.model import AcceptedDomain, CheckId, Config, Connector, Finding, Severity
from checks.probes.exports import load_exports, load_tenant
from checks.rules.domains import (
    GraphObservation,
    drift_findings,
    export_finding,
    graph_accepted_domains,
    graph_finding,
)
from checks.rules.tenant import TenantFacts, merge_tenant

if TYPE_CHECKING:  # the Graph probe (and httpx) load only when [microsoft365] is configured
    import httpx

    from checks.probes.graph import Sleep


def combine(
    config: Config,
    *,
    exported_domains: tuple[AcceptedDomain, ...],
    exported_connectors: tuple[Connector, ...],
    export_sources: list[str],
    graph: GraphObservation | None,
    previous_domains: frozenset[str] | None = None,
) -> tuple[TenantFacts, list[Finding]]:
    """Merge the sources (pure) and judge drift between config, tenant and the last run."""
    merged = merge_tenant(
        config,
        exported_domains=exported_domains,
        exported_connectors=exported_connectors,
        sources=export_sources,
    )
    findings: list[Finding] = []
    live: list[AcceptedDomain] = list(exported_domains)
    facts = merged
    if graph is not None:
        findings.append(graph_finding(graph))
        if graph.ok:
            from_graph = graph_accepted_domains(graph)
            exported = {d.name: d for d in exported_domains}
            # Graph decides what is accepted; an export adds DomainType/MatchSubDomains
            accepted = tuple(exported.get(d.name, d) for d in from_graph)
            live = list(accepted)
            facts = TenantFacts(
                name=merged.name,
                accepted_domains=accepted,
                connectors=merged.connectors,
                sources=(*merged.sources, "microsoft-graph"),
                notes=merged.notes,
            )
    has_live_source = bool(exported_domains) or (graph is not None and graph.ok)
    if has_live_source:
        findings.extend(
            drift_findings(
                config_domains=[d.name for d in config.tenant.accepted_domains],
                live=live,
                graph_domains=graph.domains if graph is not None else (),
                previous=previous_domains,
            )
        )
    return facts, findings


async def collect_tenant(
    config: Config,
    *,
    now: datetime,
    environ: Mapping[str, str],
    http: httpx.AsyncClient | None = None,
    previous_domains: frozenset[str] | None = None,
    sleep: Sleep | None = None,
) -> tuple[TenantFacts, list[Finding]]:
    """Config + exports + Graph (when `[microsoft365]` is configured) as one `TenantFacts`.

    `previous_domains` is the accepted-domain set of the last run (from the store); None means
    no history, and drift is then judged against the config. `now` is the scan's clock, taken
    for symmetry with the other stages; no tenant rule depends on time yet."""
    del now
    exports = load_exports(config)
    findings = [export_finding(err) for err in exports.errors]
    graph: GraphObservation | None = None
    if config.microsoft365.enabled:
        import asyncio

        from checks.probes.graph import fetch_domains  # httpx: ~70 ms of imports, only when used

        graph = await fetch_domains(
            config.microsoft365, environ=environ, http=http, sleep=sleep or asyncio.sleep
        )
    facts, more = combine(
        config,
        exported_domains=exports.domains,
        exported_connectors=exports.connectors,
        export_sources=list(exports.sources),
        graph=graph,
        previous_domains=previous_domains,
    )
    return facts, [*findings, *more]


async def explain_tenant(
    config: Config, *, now: datetime, environ: Mapping[str, str]
) -> TenantFacts:
    """The tenant facts an explanation is built on: the scan's, Graph included.

    Without `[microsoft365]` this is `load_tenant` (a broken export is an error: an answer from
    half the tenant would mislead). With it, Graph decides which domains are accepted, exactly
    as in the scan, and a source that failed is carried as a warning on the answer."""
    if not config.microsoft365.enabled:
        return load_tenant(config)
    facts, findings = await collect_tenant(config, now=now, environ=environ)
    problems = tuple(
        f.message
        for f in findings
        if f.check is CheckId.TENANT_SOURCE and f.severity >= Severity.WARNING
    )
    return replace(facts, notes=(*facts.notes, *problems))
