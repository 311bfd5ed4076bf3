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

import asyncio
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from checks.domain_stages import accepted_domain_stage, dns_stage
from checks.errors import CertificateFileError
from checks.model import (
    CheckId,
    Config,
    Connector,
    ConnectorType,
    Endpoint,
    Finding,
    Severity,
    worst,
)
from checks.observations import TlsObservation
from checks.probes.certfile import read_certificate_file
from checks.probes.smtp import HostLocks, probe_endpoint
from checks.probes.trust import load_trust_anchors
from checks.rules.certcheck import (
    ServedChain,
    check_not_deployed,
    connector_domain_finding,
    evaluate_connector_certificate,
    evaluate_endpoint,
    group_chains,
)
from checks.rules.certificates import CertificateFacts
from checks.rules.chain import TrustAnchors
from checks.rules.tenant import TenantFacts, merge_tenant
from checks.sources import collect_tenant
from checks.stages import AfterProbe, ScanContext, Stage

# progress(done, total): called as endpoints finish, so a terminal can draw a bar
Progress = Callable[[int, int], None]


# Judged against (or over) the accepted domains: not settled while a tenant source is failing.
DEGRADED_UNJUDGED = frozenset(
    {CheckId.ACCEPTED_DOMAIN, CheckId.SAN_COVERAGE, CheckId.MX, CheckId.DNS}
)

# Stages that judge domains (DNS, MX, accepted domains) and run before the certificate stage.
DOMAIN_STAGES: tuple[Stage, ...] = (accepted_domain_stage, dns_stage)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedCertificate:
    """A chain seen during the scan: served by an endpoint address, or read from a file."""

    subject: str  # endpoint or connector name from the config
    source: str  # "endpoint" or "file"
    address: str | None
    chain: tuple[CertificateFacts, ...]

    @property
    def fingerprint(self) -> str:
        return self.chain[0].fingerprint_sha256

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subject, self.source, self.address or "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanReport:
    findings: tuple[Finding, ...]
    summary: dict[str, Any]
    started_at: datetime
    finished_at: datetime
    # observed chains per endpoint/address/connector, for change detection by fingerprint
    certificates: tuple[ObservedCertificate, ...] = ()
    # the tenant's accepted domains as this scan saw them (the next run's drift baseline)
    accepted_domains: frozenset[str] = frozenset()
    # checks this scan could not judge (a tenant source failed): their open findings stand
    unjudged: frozenset[CheckId] = frozenset()

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
    facts, findings = await collect_tenant(
        ctx.config, now=ctx.now, environ=ctx.environ, previous_domains=ctx.previous_domains
    )
    return facts, tuple(findings)


async def run_scan(
    config: Config,
    *,
    now: datetime,
    only: CheckId | Collection[CheckId] | None = None,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
    previous_domains: frozenset[str] | None = None,
) -> ScanReport:
    """Run every check (or only those in `only`) and collect the findings.

    `previous_domains` is the accepted-domain set of the last run, so that a domain that
    appeared or disappeared in the tenant since then is reported (None: no history yet)."""
    wanted = frozenset({only} if isinstance(only, CheckId) else only) if only is not None else None
    started = time.monotonic()
    ctx = ScanContext(
        config=config,
        now=now,
        tenant=merge_tenant(config),
        environ=dict(os.environ if environ is None else environ),
        only=wanted,
        previous_domains=previous_domains,
    )
    findings: list[Finding] = []
    try:
        tenant, tenant_findings = await gather_tenant(ctx)
        degraded = any(
            f.check is CheckId.TENANT_SOURCE and f.severity is Severity.CRITICAL
            for f in tenant_findings
        )
        ctx = replace(ctx, tenant=tenant, tenant_degraded=degraded)
        findings.extend(tenant_findings)
    except Exception as err:  # our bug becomes a finding; the scan goes on
        findings.append(bug_finding("tenant", config.tenant.name, err))
    after_probe: list[AfterProbe] = []
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
        if result.after_probe is not None:
            after_probe.append(result.after_probe)
    certificates: tuple[ObservedCertificate, ...] = ()
    # TLSA needs the MX certificates even when only `dns` was asked for
    needs_probe = bool(after_probe and ctx.extra_endpoints)
    if ctx.wants(*CERTIFICATE_CHECKS) or needs_probe:
        cert_findings, certificates = await certificate_stage(
            ctx, progress=progress, also_probe=ctx.extra_endpoints if needs_probe else ()
        )
        findings.extend(cert_findings)
    chains = chains_by_host(scan_endpoints(ctx), certificates)
    for judge in after_probe:
        try:
            findings.extend(judge(chains))
        except Exception as err:  # our bug becomes a finding; the scan goes on
            findings.append(bug_finding("after-probe", config.tenant.name, err))
    if wanted is not None:
        findings = [f for f in findings if f.check in wanted or _always_shown(f)]
    elapsed = time.monotonic() - started
    return ScanReport(
        findings=tuple(findings),
        summary=summarize(findings),
        started_at=now,
        finished_at=now + timedelta(seconds=elapsed),
        certificates=certificates,
        # a degraded tenant is no baseline for drift: the next run compares with the last good one
        accepted_domains=frozenset()
        if ctx.tenant_degraded
        else frozenset(ctx.tenant.accepted_names()),
        unjudged=DEGRADED_UNJUDGED if ctx.tenant_degraded else frozenset(),
    )


def _always_shown(finding: Finding) -> bool:
    """Shown whatever `--only` says: our own failures, and a tenant source that failed (it
    explains why other results may be missing)."""
    return finding.check is CheckId.RELAYCHECK or (
        finding.check is CheckId.TENANT_SOURCE and finding.severity > Severity.INFO
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


# --------------------------------------------------------------------------- certificate stage

ENDPOINT_CHECKS = (
    CheckId.ENDPOINT_UNREACHABLE,
    CheckId.STARTTLS_MISSING,
    CheckId.TLS_HANDSHAKE,
    CheckId.CERT_EXPIRY,
    CheckId.CERT_NOT_YET_VALID,
    CheckId.CERT_CHAIN,
    CheckId.CERT_HOSTNAME,
    CheckId.CERT_WEAK,
)
CONNECTOR_CHECKS = (
    CheckId.SAN_COVERAGE,
    CheckId.CERT_EKU,
    CheckId.CERT_NOT_DEPLOYED,
    CheckId.CERT_SOURCE,
    CheckId.CERT_EXPIRY,
    CheckId.CERT_NOT_YET_VALID,
    CheckId.CERT_CHAIN,
    CheckId.CERT_WEAK,
)
CERTIFICATE_CHECKS = tuple(dict.fromkeys((*ENDPOINT_CHECKS, *CONNECTOR_CHECKS)))


def scan_endpoints(ctx: ScanContext) -> tuple[Endpoint, ...]:
    """Configured endpoints, then those stages discovered (MX hosts); the first name wins."""
    seen: dict[str, Endpoint] = {}
    for endpoint in (*ctx.config.endpoints, *ctx.extra_endpoints):
        seen.setdefault(endpoint.name, endpoint)
    return tuple(seen.values())


def relevant_connectors(tenant: TenantFacts) -> tuple[Connector, ...]:
    """Enabled OnPremises connectors: the ones that carry on-prem relay."""
    return tuple(c for c in tenant.connectors if c.enabled and c.type is ConnectorType.ON_PREMISES)


# on_probed(endpoint, observations): called as each endpoint's probes finish
OnProbed = Callable[[Endpoint, tuple[TlsObservation, ...]], None]


async def probe_all(
    endpoints: tuple[Endpoint, ...],
    config: Config,
    *,
    progress: Progress | None = None,
    on_probed: OnProbed | None = None,
) -> tuple[dict[str, tuple[TlsObservation, ...]], list[Finding]]:
    """Probe endpoints concurrently: at most `[probe] concurrency`, one connection per host.

    `on_probed` runs as each endpoint finishes (also when its probe failed inside relaycheck,
    with no observations), so judging one endpoint overlaps with waiting on the others."""
    semaphore = asyncio.Semaphore(config.probe.concurrency)
    locks = HostLocks()
    resolver = None
    if config.dns.nameservers:
        from checks.probes.dns import address_resolver  # dnspython only when configured

        resolver = address_resolver(config.dns)
    results: dict[str, tuple[TlsObservation, ...]] = {}
    bugs: list[Finding] = []
    done = 0
    total = len(endpoints)
    if progress is not None:
        progress(0, total)

    async def one(endpoint: Endpoint) -> None:
        nonlocal done
        async with semaphore:
            try:
                results[endpoint.name] = await probe_endpoint(
                    endpoint, config.probe, locks=locks, resolver=resolver
                )
            except Exception as err:  # our bug becomes a finding; the scan goes on
                bugs.append(bug_finding("probe", endpoint.name, err))
        if on_probed is not None:
            on_probed(endpoint, results.get(endpoint.name, ()))
        done += 1
        if progress is not None:
            progress(done, total)

    await asyncio.gather(*(one(e) for e in endpoints))
    return results, bugs


def chains_by_host(
    endpoints: Sequence[Endpoint], certificates: Sequence[ObservedCertificate]
) -> dict[str, tuple[CertificateFacts, ...]]:
    """The chain each endpoint host served (the first address's), for TLSA matching."""
    hosts = {e.name: e.host.lower().rstrip(".") for e in endpoints}
    chains: dict[str, tuple[CertificateFacts, ...]] = {}
    for observed in certificates:
        host = hosts.get(observed.subject)
        if observed.source == "endpoint" and host is not None:
            chains.setdefault(host, observed.chain)
    return chains


async def certificate_stage(
    ctx: ScanContext,
    *,
    progress: Progress | None = None,
    also_probe: tuple[Endpoint, ...] = (),
) -> tuple[list[Finding], tuple[ObservedCertificate, ...]]:
    """Probe endpoints, read certificate files, and judge every chain observed."""
    config = ctx.config
    anchors = load_trust_anchors(config.trust.ca_file)
    connectors = relevant_connectors(ctx.tenant)
    endpoints = scan_endpoints(ctx)
    if not ctx.wants(*ENDPOINT_CHECKS):
        referenced = {c.certificate.endpoint for c in connectors if c.certificate}
        referenced.update(e.name for e in also_probe)
        endpoints = tuple(e for e in endpoints if e.name in referenced)
    judged: dict[str, list[Finding]] = {}

    def judge(endpoint: Endpoint, seen: tuple[TlsObservation, ...]) -> None:
        # judged as soon as it is probed, while the event loop would otherwise wait on others
        judged[endpoint.name] = _guarded(
            "endpoint",
            endpoint.name,
            partial(
                evaluate_endpoint,
                endpoint,
                seen,
                now=ctx.now,
                thresholds=config.thresholds,
                anchors=anchors,
            ),
        )

    observations, findings = await probe_all(endpoints, config, progress=progress, on_probed=judge)
    certificates: list[ObservedCertificate] = []
    for endpoint in endpoints:  # findings in the configured order, however probes finished
        seen = observations.get(endpoint.name, ())
        certificates.extend(
            ObservedCertificate(
                subject=endpoint.name, source="endpoint", address=o.address, chain=o.chain
            )
            for o in seen
            if o.ok
        )
        if endpoint.name not in judged:
            judge(endpoint, seen)
        findings.extend(judged[endpoint.name])
    for connector in connectors:
        findings.extend(
            _guarded(
                "connector",
                connector.name,
                partial(_connector_findings, ctx, connector, anchors, observations, certificates),
            )
        )
    return findings, tuple(certificates)


def _guarded(where: str, subject: str, run: Callable[[], list[Finding]]) -> list[Finding]:
    try:
        return run()
    except Exception as err:  # our bug becomes a finding; the scan goes on
        return [bug_finding(where, subject, err)]


def _connector_findings(
    ctx: ScanContext,
    connector: Connector,
    anchors: TrustAnchors,
    observations: Mapping[str, tuple[TlsObservation, ...]],
    certificates: list[ObservedCertificate],
) -> list[Finding]:
    config = ctx.config
    findings: list[Finding] = []
    domain = (
        None
        if ctx.nothing_to_judge_against
        else connector_domain_finding(connector, ctx.tenant.accepted_domains)
    )
    if domain is not None:
        findings.append(domain)
    source = connector.certificate
    if source is None:
        if connector.certificate_based:
            findings.append(
                Finding(
                    check=CheckId.CERT_SOURCE,
                    severity=Severity.INFO,
                    subject=connector.name,
                    message="no certificate source configured ([connectors.certificate] endpoint "
                    "or file): the certificate this connector matches is not checked",
                    cause="none",
                )
            )
        return findings
    served: tuple[ServedChain, ...] = ()
    if source.endpoint is not None:
        served = group_chains(observations.get(source.endpoint, ()))
        if not served:
            findings.append(
                Finding(
                    check=CheckId.CERT_SOURCE,
                    severity=Severity.WARNING,
                    subject=connector.name,
                    message=f"the certificate could not be observed at endpoint {source.endpoint} "
                    "(see that endpoint's findings)",
                    details={"endpoint": source.endpoint},
                    cause=f"endpoint:{source.endpoint}",
                )
            )
    file_chain: tuple[CertificateFacts, ...] = ()
    if source.file is not None:
        try:
            file_chain = read_certificate_file(
                source.file, password_env=source.password_env, environ=ctx.environ
            )
        except CertificateFileError as err:
            findings.append(
                Finding(
                    check=CheckId.CERT_SOURCE,
                    severity=Severity.CRITICAL,
                    subject=connector.name,
                    message=f"certificate file unusable: {err}",
                    details={"file": str(source.file), "problem": err.problem},
                    cause=f"file:{source.file.name}",
                )
            )
    if file_chain:
        certificates.append(
            ObservedCertificate(
                subject=connector.name, source="file", address=None, chain=file_chain
            )
        )
        findings.extend(
            evaluate_connector_certificate(
                connector,
                file_chain,
                now=ctx.now,
                thresholds=config.thresholds,
                anchors=anchors,
                cause=f"sha256:{file_chain[0].fingerprint_sha256[:16]}",
                source=f"file {source.file.name if source.file else ''}",
                full=True,
            )
        )
        if served:
            findings.extend(
                check_not_deployed(
                    connector, file_chain[0], served, now=ctx.now, thresholds=config.thresholds
                )
            )
        return findings
    for group in served:
        findings.extend(
            evaluate_connector_certificate(
                connector,
                group.chain,
                now=ctx.now,
                thresholds=config.thresholds,
                anchors=anchors,
                cause=group.cause,
                source=f"endpoint {source.endpoint} ({', '.join(group.addresses)})",
                full=False,
            )
        )
    return findings
