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
from checks.observe import served_observation, shown_path
from checks.probes.certfile import read_certificate_file
from checks.probes.revocation import RevocationFetcher
from checks.probes.smtp import AddressLocks, ClientContexts, probe_endpoint
from checks.probes.trust import load_trust_anchors
from checks.readiness import relay_findings
from checks.rules.certcheck import (
    ServedChain,
    certificate_details,
    check_not_deployed,
    connector_domain_finding,
    evaluate_connector_certificate,
    evaluate_endpoint,
    group_chains,
    label,
)
from checks.rules.certificates import CertificateFacts, CertificateObservation
from checks.rules.chain import TrustAnchors, verify_chain
from checks.rules.policy import apply_check_policy, not_set_up_findings
from checks.rules.revocation import RevocationEvidence, check_revocation
from checks.rules.tenant import TenantFacts, merge_tenant
from checks.sources import collect_tenant
from checks.stages import AfterProbe, ScanContext, Stage

# progress(done, total): called as endpoints finish, so a terminal can draw a bar
Progress = Callable[[int, int], None]


# Judged against (or over) the accepted domains: not settled while a tenant source is failing.
DEGRADED_UNJUDGED = frozenset(
    {
        CheckId.ACCEPTED_DOMAIN,
        CheckId.SAN_COVERAGE,
        CheckId.MX,
        CheckId.DNS,
        CheckId.RELAY_SCENARIO,
    }
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
    # "RSA" / "EC": the second certificate of a dual-certificate address, found by offering
    # only that key type (None: what the ordinary handshake got)
    key_offer: str | None = None

    @property
    def fingerprint(self) -> str:
        return self.chain[0].fingerprint_sha256

    @property
    def key(self) -> tuple[str, str, str]:
        where = self.address or ""
        return (
            self.subject,
            self.source,
            f"{where} ({self.key_offer})" if self.key_offer else where,
        )


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
    connector_certificates: dict[str, CertificateObservation] = {}
    # TLSA needs the MX certificates even when only `dns` was asked for
    needs_probe = bool(after_probe and ctx.extra_endpoints)
    if ctx.wants(*CERTIFICATE_CHECKS, CheckId.RELAY_SCENARIO) or needs_probe:
        cert_findings, certificates = await certificate_stage(
            ctx,
            progress=progress,
            also_probe=ctx.extra_endpoints if needs_probe else (),
            connector_certificates=connector_certificates,
        )
        findings.extend(cert_findings)
    if any(_staged_renewal(f) for f in findings):
        try:
            findings = with_renewal_preflight(findings, ctx, certificates, connector_certificates)
        except Exception as err:  # our bug becomes a finding; the findings themselves stand
            findings.append(bug_finding("preflight", config.tenant.name, err))
    if ctx.wants(CheckId.RELAY_SCENARIO) and not ctx.nothing_to_judge_against:
        findings.extend(
            _guarded(
                "relay-scenario",
                config.tenant.name,
                partial(relay_findings, config, ctx.tenant, connector_certificates, now=now),
            )
        )
    chains = chains_by_host(scan_endpoints(ctx), certificates)
    for judge in after_probe:
        try:
            findings.extend(judge(chains))
        except Exception as err:  # our bug becomes a finding; the scan goes on
            findings.append(bug_finding("after-probe", config.tenant.name, err))
    if wanted is not None:
        findings = [f for f in findings if f.check in wanted or _always_shown(f)]
        findings.extend(not_set_up_findings(sorted(wanted), config))
    findings = apply_check_policy(findings, config.checks)
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


def _staged_renewal(finding: Finding) -> bool:
    """A `cert-not-deployed` saying a renewed file waits while the listener serves the old one."""
    return finding.check is CheckId.CERT_NOT_DEPLOYED and finding.severity >= Severity.WARNING


def with_renewal_preflight(
    findings: list[Finding],
    ctx: ScanContext,
    certificates: Sequence[ObservedCertificate],
    connector_certificates: Mapping[str, CertificateObservation],
) -> list[Finding]:
    """Each staged renewal's finding carries the preflight verdict for the waiting file, so the
    team hears "the renewed certificate waiting on mail1 would break relay of NDRs" before it is
    bound. Judged from this scan's own observations: the served chain is "before", the file is
    "after" (`checks.preflight`, the same judgement as `relaycheck preflight`)."""
    # loaded here: only a scan that found a staged renewal needs the preflight engine
    from checks.preflight import Target, preflight, waiting_note

    anchors = load_trust_anchors(ctx.config.trust.ca_file)
    connectors = {c.name: c for c in relevant_connectors(ctx.tenant)}
    result: list[Finding] = []
    for finding in findings:
        connector = connectors.get(finding.subject)
        source = connector.certificate if connector is not None else None
        if not _staged_renewal(finding) or source is None or source.endpoint is None:
            result.append(finding)
            continue
        served_fp = finding.details.get("served", {}).get("fingerprint_sha256")
        served = next(
            (
                c.chain
                for c in certificates
                if c.source == "endpoint"
                and c.subject == source.endpoint
                and c.fingerprint == served_fp
            ),
            None,
        )
        staged = next(
            (c.chain for c in certificates if c.source == "file" and c.subject == finding.subject),
            None,
        )
        if served is None or staged is None or connector is None:
            result.append(finding)
            continue
        today_view = CertificateObservation(
            source=f"endpoint {source.endpoint}",
            chain=served,
            verdict=verify_chain(served, anchors, now=ctx.now),
        )
        target = Target(
            name=connector.name,
            kind="connector",
            connectors=(connector,),
            endpoint=ctx.config.endpoint(source.endpoint),
        )
        judged = preflight(
            ctx.config,
            ctx.tenant,
            {**connector_certificates, connector.name: today_view},
            staged,
            target,
            current=today_view,
            anchors=anchors,
            now=ctx.now,
            source=f"file {source.file.name if source.file else ''}",
        )
        note = waiting_note(judged, source.endpoint)
        result.append(
            replace(
                finding,
                message=f"{note}; {finding.message}",
                details={
                    **finding.details,
                    "preflight": {
                        "verdict": judged.verdict_line,
                        "result": judged.verdict.value,
                        "note": note,
                        "steps": list(judged.steps),
                    },
                },
            )
        )
    return result


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
    CheckId.CERT_REVOKED,
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


async def probe_all(
    endpoints: tuple[Endpoint, ...],
    config: Config,
    *,
    progress: Progress | None = None,
) -> tuple[dict[str, tuple[TlsObservation, ...]], list[Finding]]:
    """Probe endpoints concurrently: at most `[probe] concurrency` connections at once, one
    per listener address, with client contexts built once for the whole scan."""
    slots = asyncio.Semaphore(config.probe.concurrency)
    locks = AddressLocks()
    contexts = ClientContexts.create(every_key_type=config.probe.every_key_type)
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
        try:
            results[endpoint.name] = await probe_endpoint(
                endpoint,
                config.probe,
                locks=locks,
                resolver=resolver,
                contexts=contexts,
                slots=slots,
            )
        except Exception as err:  # our bug becomes a finding; the scan goes on
            bugs.append(bug_finding("probe", endpoint.name, err))
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
    connector_certificates: dict[str, CertificateObservation] | None = None,
) -> tuple[list[Finding], tuple[ObservedCertificate, ...]]:
    """Probe endpoints, read certificate files, and judge every chain observed.

    Fills `connector_certificates` with each connector's certificate as explain sees it (keyed
    by connector name), so the relay scenarios are judged from this scan's observations, never
    from a second probe."""
    config = ctx.config
    anchors = load_trust_anchors(config.trust.ca_file)
    connectors = relevant_connectors(ctx.tenant)
    endpoints = scan_endpoints(ctx)
    if not ctx.wants(*ENDPOINT_CHECKS):
        referenced = {c.certificate.endpoint for c in connectors if c.certificate}
        referenced.update(e.name for e in also_probe)
        endpoints = tuple(e for e in endpoints if e.name in referenced)
    observations, findings = await probe_all(endpoints, config, progress=progress)
    files = _read_files(ctx, connectors)
    revocation = (
        await fetch_revocation(
            config,
            anchors,
            observations,
            [c for c in files.values() if isinstance(c, tuple) and c],
        )
        if config.revocation.enabled and ctx.wants(CheckId.CERT_REVOKED)
        else None
    )
    certificates: list[ObservedCertificate] = []
    for endpoint in endpoints:  # findings in the configured order, however probes finished
        seen = observations.get(endpoint.name, ())
        certificates.extend(
            ObservedCertificate(
                subject=endpoint.name,
                source="endpoint",
                address=o.address,
                chain=o.chain,
                key_offer=o.key_offer,
            )
            for o in seen
            if o.ok
        )
        findings.extend(
            _guarded(
                "endpoint",
                endpoint.name,
                partial(
                    evaluate_endpoint,
                    endpoint,
                    seen,
                    now=ctx.now,
                    thresholds=config.thresholds,
                    anchors=anchors,
                    revocation=revocation,
                    revocation_settings=config.revocation,
                ),
            )
        )
    seen_by_connector = connector_certificates if connector_certificates is not None else {}
    for connector in connectors:
        findings.extend(
            _guarded(
                "connector",
                connector.name,
                partial(
                    _connector_findings,
                    ctx,
                    connector,
                    anchors,
                    observations,
                    certificates,
                    seen_by_connector,
                    files=files,
                    revocation=revocation,
                ),
            )
        )
    return findings, tuple(certificates)


async def fetch_revocation(
    config: Config,
    anchors: TrustAnchors,
    observations: Mapping[str, tuple[TlsObservation, ...]],
    files: Sequence[tuple[CertificateFacts, ...]] = (),
) -> dict[str, tuple[RevocationEvidence, ...]]:
    """OCSP/CRL evidence for every distinct chain served, keyed by the chain's `cause`
    (`group_chains`), and for every certificate file's chain (keyed `sha256:` + the leaf's
    fingerprint, as its findings are): fetched concurrently, each URL once, after all probes."""
    jobs: dict[str, tuple[tuple[CertificateFacts, ...], bytes | None]] = {}
    for seen in observations.values():
        for group in group_chains(seen):
            stapled = next(
                (
                    o.stapled_ocsp
                    for o in seen
                    if o.ok and o.chain == group.chain and o.stapled_ocsp is not None
                ),
                None,
            )
            jobs.setdefault(group.cause, (group.chain, stapled))
    for chain in files:
        jobs.setdefault(file_cause(chain), (chain, None))
    if not jobs:
        return {}
    async with RevocationFetcher(
        config.revocation, anchors=anchors.certificates, concurrency=config.probe.concurrency
    ) as fetcher:
        causes = list(jobs)
        results = await asyncio.gather(
            *(fetcher.evidence(jobs[c][0], stapled=jobs[c][1]) for c in causes)
        )
    return dict(zip(causes, results, strict=True))


def file_cause(chain: Sequence[CertificateFacts]) -> str:
    """The `cause` of findings about a certificate file's chain."""
    return f"sha256:{chain[0].fingerprint_sha256[:16]}"


def _read_files(
    ctx: ScanContext, connectors: Sequence[Connector]
) -> dict[str, tuple[CertificateFacts, ...] | Exception]:
    """Each connector's certificate file, read once (before revocation is fetched for it); an
    unreadable file is kept as its error, for `_connector_findings` to report."""
    read: dict[str, tuple[CertificateFacts, ...] | Exception] = {}
    for connector in connectors:
        source = connector.certificate
        if source is None or source.file is None:
            continue
        try:
            read[connector.name] = read_certificate_file(
                source.file, password_env=source.password_env, environ=ctx.environ
            )
        except Exception as err:  # kept: reported (or, if our bug, raised) per connector
            read[connector.name] = err
    return read


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
    seen_by_connector: dict[str, CertificateObservation],
    *,
    files: Mapping[str, tuple[CertificateFacts, ...] | Exception] | None = None,
    revocation: Mapping[str, Sequence[RevocationEvidence]] | None = None,
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
        probed = observations.get(source.endpoint, ())
        served = group_chains(probed)
        seen_by_connector[connector.name] = served_observation(
            source.endpoint, probed, anchors, now=ctx.now
        )
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
            read = (files or {}).get(connector.name)
            if isinstance(read, Exception):
                raise read
            file_chain = (
                read
                if read is not None
                else read_certificate_file(
                    source.file, password_env=source.password_env, environ=ctx.environ
                )
            )
        except CertificateFileError as err:
            seen_by_connector[connector.name] = CertificateObservation(
                source=shown_path(source.file), error=err.problem
            )
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
    if file_chain and source.file is not None:
        # explain prefers the file too: it is what the MTA presents as a client
        seen_by_connector[connector.name] = CertificateObservation(
            source=shown_path(source.file),
            chain=file_chain,
            verdict=verify_chain(file_chain, anchors, now=ctx.now),
        )
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
                cause=file_cause(file_chain),
                source=f"file {source.file.name if source.file else ''}",
                full=True,
            )
        )
        if revocation is not None and file_cause(file_chain) in revocation:
            findings.append(
                check_revocation(
                    connector.name,
                    revocation[file_cause(file_chain)],
                    now=ctx.now,
                    settings=config.revocation,
                    cause=file_cause(file_chain),
                    details={
                        **certificate_details(file_chain[0], ctx.now),
                        "source": f"file {source.file.name if source.file else ''}",
                    },
                    leaf_label=label(file_chain[0]),
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
