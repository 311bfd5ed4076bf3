"""Scan stages for the domain checks: `accepted-domain`, and `mx` + `dns` over one DNS pass.

They plug into `checks.scan.DOMAIN_STAGES`; the stage types live in `checks.stages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from checks.model import CheckId, Finding
from checks.rules.certificates import CertificateFacts
from checks.rules.domains import accepted_domain_findings
from checks.stages import ScanContext, StageResult

if TYPE_CHECKING:
    import httpx

# Microsoft-managed routing domains: their MX is Microsoft's business, not the mail team's
MANAGED_SUFFIXES = (".onmicrosoft.com", ".mail.onmicrosoft.com")


def dns_domains(ctx: ScanContext) -> list[str]:
    """Accepted domains whose DNS the mail team controls."""
    return [d.name for d in ctx.tenant.accepted_domains if not d.name.endswith(MANAGED_SUFFIXES)]


async def accepted_domain_stage(ctx: ScanContext) -> StageResult:
    if not ctx.wants(CheckId.ACCEPTED_DOMAIN) or ctx.nothing_to_judge_against:
        return StageResult()
    findings = accepted_domain_findings(ctx.tenant, sender_domains=ctx.config.tenant.sender_domains)
    return StageResult(findings=tuple(findings))


async def dns_stage(ctx: ScanContext, *, http: httpx.AsyncClient | None = None) -> StageResult:
    """One DNS pass for `mx` and `dns`; non-Exchange-Online MX hosts become endpoints.

    TLSA records are matched in `after_probe`, once the certificate stage has observed the
    chains the MX hosts serve."""
    if not ctx.config.dns.enabled or not ctx.wants(CheckId.MX, CheckId.DNS):
        return StageResult()
    domains = dns_domains(ctx)
    if not domains:
        return StageResult()
    # dnspython, httpx and the DNS rules (~100 ms of imports) load only for a scan that asks DNS
    from checks.probes.dns import observe_domains
    from checks.rules.dns import (
        mta_sts_findings,
        mx_endpoints,
        mx_findings,
        spf_findings,
        tlsa_findings,
    )

    observations = await observe_domains(
        ctx.config.dns, domains, http=http, ca_file=ctx.config.trust.ca_file
    )
    findings: list[Finding] = []
    for obs in observations:
        findings.extend(mx_findings(obs, expected=ctx.config.tenant.mx_expected))
        findings.extend(spf_findings(obs))
        findings.extend(mta_sts_findings(obs))

    def tlsa(chains: Mapping[str, tuple[CertificateFacts, ...]]) -> list[Finding]:
        return [
            finding
            for obs in observations
            for host in obs.hosts
            for finding in tlsa_findings(obs.domain, host, chains.get(host.host))
        ]

    # MX hosts are probed for TLSA only when a TLSA record exists and `dns` was asked for
    has_tlsa = any(host.tlsa_records for obs in observations for host in obs.hosts)
    probe_for_tlsa = has_tlsa and ctx.wants(CheckId.DNS)
    if not probe_for_tlsa and ctx.wants(CheckId.DNS):
        findings.extend(tlsa({}))  # TLSA lookup failures still count
    return StageResult(
        findings=tuple(findings),
        extra_endpoints=mx_endpoints(observations, port=ctx.config.probe.mx_port),
        after_probe=tlsa if probe_for_tlsa else None,
    )
