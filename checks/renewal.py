"""The preflight's I/O edge: observe today's world, then let `checks.preflight` judge it.

`relaycheck preflight` and `relaycheck demo` share this: the tenant facts as `explain` loads
them, today's connector certificates as `explain` observes them (the file an MTA presents, else
the listener's), and, only when `--for` must be guessed from names, a probe of endpoints no
connector observes, and the OCSP/CRL evidence for `cert-revoked` (as the scan fetches it).
Everything it gathers is handed to the pure `checks.preflight.preflight`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from checks.model import Config
from checks.observe import observe_connector_certificates, observe_endpoint
from checks.preflight import PreflightResult, Target, choose_target, preflight, targets
from checks.probes.trust import load_trust_anchors
from checks.rules.certificates import CertificateFacts, CertificateObservation
from checks.rules.chain import TrustAnchors
from checks.rules.tenant import TenantFacts
from checks.scan import fetch_revocation
from checks.sources import explain_tenant


async def current_certificates(
    config: Config,
    facts: TenantFacts,
    today: Mapping[str, CertificateObservation],
    anchors: TrustAnchors,
    *,
    now: datetime,
    probe_all: bool,
) -> dict[str, CertificateObservation]:
    """Today's certificate of each target, by target name: a connector's observation, an
    endpoint's through the connector observed there, else (only when needed) a probe."""
    current: dict[str, CertificateObservation] = {}
    for target in targets(config, facts):
        known = next((today[c.name] for c in target.connectors if c.name in today), None)
        if known is not None:
            current[target.name] = known
        elif target.kind == "endpoint" and target.endpoint is not None and probe_all:
            current[target.name] = await observe_endpoint(
                config, target.endpoint.name, anchors, now=now
            )
    return current


async def judge(
    config: Config,
    candidate: Sequence[CertificateFacts],
    *,
    requested: str | None,
    source: str,
    now: datetime,
    environ: Mapping[str, str],
    send_connector: str | None = None,
) -> PreflightResult:
    """Observe today's world (the I/O), then let `checks.preflight` judge it."""
    facts = await explain_tenant(config, now=now, environ=environ)
    anchors = load_trust_anchors(config.trust.ca_file)
    today = await observe_connector_certificates(
        config, facts, now=now, environ=environ, anchors=anchors
    )
    every = targets(config, facts)
    single = sum(1 for t in every if t.kind == "connector" and t.connectors[0].certificate_based)
    current = await current_certificates(
        config, facts, today, anchors, now=now, probe_all=requested is None and single != 1
    )
    target = choose_target(
        config, facts, requested=requested, candidate=candidate[0], current=current
    )
    observed = current.get(target.name)
    if observed is None:
        observed = await _observe_target(config, target, anchors, now=now)
    # cert-revoked where the chains name an OCSP responder or CRL: fetched as the scan fetches
    chains = [tuple(candidate), *([observed.chain] if observed and observed.chain else [])]
    revocation = (
        await fetch_revocation(config, anchors, {}, chains) if config.revocation.enabled else None
    )
    return preflight(
        config,
        facts,
        today,
        candidate,
        target,
        current=observed,
        anchors=anchors,
        now=now,
        source=source,
        send_connector=send_connector,
        revocation=revocation,
    )


async def _observe_target(
    config: Config, target: Target, anchors: TrustAnchors, *, now: datetime
) -> CertificateObservation | None:
    if target.endpoint is None:
        return None
    return await observe_endpoint(config, target.endpoint.name, anchors, now=now)
