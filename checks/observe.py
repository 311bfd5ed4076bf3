"""Observing connector certificates: the I/O edge between the config and the explain engine.

Each connector with a `certificate` source gets one `CertificateObservation`. A source that
cannot be read is recorded as an observation with an `error`, not raised: an explanation must
still come out, saying the certificate was not observed and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from checks.errors import CertificateFileError
from checks.model import Config, Connector
from checks.observations import TlsObservation
from checks.probes.certfile import read_certificate_file
from checks.probes.trust import load_trust_anchors
from checks.rules.certificates import CertificateObservation
from checks.rules.chain import TrustAnchors, verify_chain
from checks.rules.tenant import TenantFacts

if TYPE_CHECKING:
    from checks.probes.smtp import AddressLocks


def shown_path(path: Path) -> str:
    """A path as the user would recognise it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def observe_file(
    connector: Connector,
    anchors: TrustAnchors,
    *,
    now: datetime,
    environ: Mapping[str, str] | None = None,
) -> CertificateObservation:
    source = connector.certificate
    assert source is not None
    assert source.file is not None
    try:
        chain = read_certificate_file(
            source.file, password_env=source.password_env, environ=environ
        )
    except CertificateFileError as err:
        return CertificateObservation(source=shown_path(source.file), error=err.problem)
    return CertificateObservation(
        source=shown_path(source.file), chain=chain, verdict=verify_chain(chain, anchors, now=now)
    )


def observe_files_only(
    config: Config,
    facts: TenantFacts,
    *,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    anchors: TrustAnchors | None = None,
) -> dict[str, CertificateObservation] | None:
    """`observe_connector_certificates` without an event loop, when every source is a file.

    None when some connector's certificate is observed at an endpoint (that needs a probe).
    `relaycheck explain` then starts without asyncio and the SMTP probe (~40 ms of imports)."""
    wanted = [c for c in facts.connectors if c.certificate is not None]
    if any(c.certificate is not None and c.certificate.file is None for c in wanted):
        return None
    if not wanted:
        return {}
    trust = anchors if anchors is not None else load_trust_anchors(config.trust.ca_file)
    return {c.name: observe_file(c, trust, now=now, environ=environ) for c in wanted}


async def observe_connector_certificates(
    config: Config,
    facts: TenantFacts,
    *,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    anchors: TrustAnchors | None = None,
) -> dict[str, CertificateObservation]:
    """One observation per connector that names a certificate source, keyed by connector name."""
    wanted = [c for c in facts.connectors if c.certificate is not None]
    if not wanted:
        return {}
    trust = anchors if anchors is not None else load_trust_anchors(config.trust.ca_file)
    from checks.probes.smtp import AddressLocks  # the probe (and asyncio) only when probing

    locks = AddressLocks()
    result: dict[str, CertificateObservation] = {}
    for connector in wanted:
        source = connector.certificate
        assert source is not None
        if source.file is not None:
            result[connector.name] = observe_file(connector, trust, now=now, environ=environ)
        elif source.endpoint is not None:
            result[connector.name] = await observe_endpoint(
                config, source.endpoint, trust, now=now, locks=locks
            )
    return result


async def observe_endpoint(
    config: Config,
    name: str,
    anchors: TrustAnchors,
    *,
    now: datetime,
    locks: AddressLocks | None = None,
) -> CertificateObservation:
    """The certificate an endpoint serves today, probed with the scan's timeouts."""
    from checks.probes.smtp import probe_endpoint

    endpoint = config.endpoint(name)
    if endpoint is None:
        return CertificateObservation(source=f"endpoint {name}", error="no such endpoint")
    # the scan's resolver: `[dns] nameservers` when configured, so both judge the same addresses
    resolver = None
    if config.dns.nameservers:
        # dnspython (and the httpx it imports) only when a nameserver is configured: a plain
        # `relaycheck explain` should not pay ~100 ms of imports it never uses
        from checks.probes.dns import address_resolver

        resolver = address_resolver(config.dns)
    observations = await probe_endpoint(endpoint, config.probe, locks=locks, resolver=resolver)
    return served_observation(name, observations, anchors, now=now)


def served_observation(
    name: str,
    observations: Sequence[TlsObservation],
    anchors: TrustAnchors,
    *,
    now: datetime,
) -> CertificateObservation:
    """What explain needs from an endpoint's probe results: the chain it serves, or why none.

    Shared by `explain` (which probes) and the scan (which already probed), so both judge the
    same certificate the same way. Of a pool behind one name, the first address that answered
    is used and the others are named in `source` when they serve something else.
    """
    served = [o for o in observations if o.ok]
    if not served:
        failure = next((o.failure for o in observations if o.failure is not None), None)
        reason = failure.reason if failure is not None else "no certificate was sent"
        if failure is not None and failure.server_words:
            reason += f" (server said: {failure.server_words})"
        return CertificateObservation(source=f"endpoint {name}", error=reason)
    first = served[0]
    others = sorted(
        {
            o.address or ""
            for o in served
            if o.chain[0].fingerprint_sha256 != first.chain[0].fingerprint_sha256
        }
    )
    shown = f"endpoint {name} ({first.address})"
    if others:
        shown += f"; {', '.join(others)} serve a different certificate"
    return CertificateObservation(
        source=shown, chain=first.chain, verdict=verify_chain(first.chain, anchors, now=now)
    )
