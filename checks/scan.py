"""A scan: plan -> probe (bounded concurrency) -> rules -> `ScanReport`.

The scan is a short pipeline of stages over one `ScanContext`, so other checks can plug in
without touching the certificate code: `gather_tenant` loads the tenant facts (a failing
export becomes a `tenant-source` finding, not an aborted scan), every stage in `DOMAIN_STAGES`
runs next (DNS, MX, accepted domains; each may add endpoints, e.g. MX hosts, which are then
probed like configured ones), and the certificate stage runs last. A stage or check that raises
is a bug in relaycheck, not a remote failure: it becomes a `relaycheck` finding and the scan
goes on, because one broken check must not hide every other result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from checks.domain_stages import accepted_domain_stage, dns_stage
from checks.model import CheckId, Config, Endpoint, Finding, Severity, worst
from checks.sources import collect_tenant
from checks.tenant import TenantFacts, merge_tenant

# progress(done, total): called as endpoints finish, so a terminal can draw a bar
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanContext:
    """Everything a stage may read; stages return results instead of mutating it."""

    config: Config
    now: datetime
    tenant: TenantFacts
    extra_endpoints: tuple[Endpoint, ...] = ()
    environ: Mapping[str, str] = field(default_factory=dict)
    only: CheckId | None = None

    def wants(self, *checks: CheckId) -> bool:
        """Whether any of `checks` is requested (`--only` narrows the scan to one id)."""
        return self.only is None or self.only in checks


@dataclass(frozen=True, slots=True, kw_only=True)
class StageResult:
    findings: tuple[Finding, ...] = ()
    # endpoints discovered by the stage (MX hosts), probed by the certificate stage
    extra_endpoints: tuple[Endpoint, ...] = ()


Stage = Callable[[ScanContext], Awaitable[StageResult]]

# Stages that judge domains (DNS, MX, accepted domains) and run before the certificate stage.
DOMAIN_STAGES: tuple[Stage, ...] = (accepted_domain_stage, dns_stage)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanReport:
    findings: tuple[Finding, ...]
    summary: dict[str, Any]
    started_at: datetime
    finished_at: datetime
    # observed chains per endpoint/address/connector, for change detection by fingerprint
    certificates: tuple[Any, ...] = ()

    @property
    def worst(self) -> Severity:
        return worst(f.severity for f in self.findings)


def bug_finding(where: str, subject: str, err: BaseException) -> Finding:
    """A check that raised: our bug, reported as data so the rest of the scan still counts."""
    return Finding(
        check=CheckId.RELAYCHECK,
        severity=Severity.WARNING,
        subject=subject,
        message=f"{where} failed inside relaycheck ({type(err).__name__}: {err}); "
        "the result of this check is unknown, please report it",
        details={"stage": where, "error": type(err).__name__},
        cause=where,
    )


async def gather_tenant(ctx: ScanContext) -> tuple[TenantFacts, tuple[Finding, ...]]:
    """Tenant facts for the scan: config, exports and Graph (`checks.sources`); an unusable
    source becomes a `tenant-source` finding and the others still count."""
    facts, findings = await collect_tenant(ctx.config, now=ctx.now, environ=ctx.environ)
    return facts, tuple(findings)


async def run_scan(
    config: Config,
    *,
    now: datetime,
    only: CheckId | None = None,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
) -> ScanReport:
    """Run every check (or only `only`) and collect the findings."""
    started = time.monotonic()
    ctx = ScanContext(
        config=config,
        now=now,
        tenant=merge_tenant(config),
        environ=dict(os.environ if environ is None else environ),
        only=only,
    )
    findings: list[Finding] = []
    try:
        tenant, tenant_findings = await gather_tenant(ctx)
        ctx = replace(ctx, tenant=tenant)
        findings.extend(tenant_findings)
    except Exception as err:  # our bug becomes a finding; the scan goes on
        findings.append(bug_finding("tenant", config.tenant.name, err))
    for stage in DOMAIN_STAGES:
        try:
            result = await stage(ctx)
        except Exception as err:  # our bug becomes a finding; the scan goes on
            findings.append(
                bug_finding(getattr(stage, "__name__", "stage"), config.tenant.name, err)
            )
            continue
        findings.extend(result.findings)
        ctx = replace(ctx, extra_endpoints=(*ctx.extra_endpoints, *result.extra_endpoints))
    # certificate stage: filled in below (issue 3)
    if only is not None:
        findings = [f for f in findings if f.check is only]
    elapsed = time.monotonic() - started
    return ScanReport(
        findings=tuple(findings),
        summary=summarize(findings),
        started_at=now,
        finished_at=now + timedelta(seconds=elapsed),
    )


def summarize(findings: list[Finding] | tuple[Finding, ...]) -> dict[str, Any]:
    counts = {s.value: 0 for s in Severity}
    for finding in findings:
        counts[finding.severity.value] += 1
    return {
        "worst": worst(f.severity for f in findings).value,
        "counts": counts,
        "total": len(findings),
    }
