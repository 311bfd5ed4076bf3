"""`relaycheck demo`: the whole product on loopback, with nothing to configure and no network.

It tells the outage story relaycheck exists for, with real parts: a throwaway CA issues the
Contoso smart host's certificate; a STARTTLS listener on 127.0.0.1 serves it; a scheduled run
checks it (all good); then a "renewal" arrives that no longer carries a contoso.com name, and
`relaycheck preflight` says binding it breaks relay; it is deployed anyway, and the next run
catches it the moment it is served (alerts printed to the console, as `serve` does
without Slack tokens), and `explain` shows the bounce Exchange Online would now give.

The demo tenant is the shipped Contoso example; only the endpoint, the trust anchor and the
state file point at the throwaway pieces. DNS checks are left out: they would ask the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bot.alerting.cycle import run_cycle
from bot.alerting.delivery import DeliveryWorker
from bot.alerting.store import Store
from bot.terminal import render_text
from checks.config import load_config, parse_config
from checks.explain import explain
from checks.i18n import _
from checks.model import CheckId, Config
from checks.observe import observe_connector_certificates
from checks.preflight import Verdict
from checks.preflight import render_text as render_preflight
from checks.probes.certfile import parse_certificate_bytes
from checks.probes.exports import load_tenant
from checks.renewal import judge
from checks.report import render_table
from checks.rules.addresses import parse_pair
from checks.scan import CERTIFICATE_CHECKS, ScanReport, run_scan, summarize

# Everything but DNS: the demo never leaves this machine.
DEMO_CHECKS = frozenset(
    {*CERTIFICATE_CHECKS, CheckId.ACCEPTED_DOMAIN, CheckId.TENANT_SOURCE, CheckId.RELAY_SCENARIO}
)
CONNECTOR = "Inbound from Contoso on-prem"


# --------------------------------------------------------------------------- a throwaway PKI


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Contoso Example PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate with the chain it is served with and its key (PEM)."""

    chain_pem: bytes
    key_pem: bytes


class ExamplePki:
    """A root and an issuing CA; `leaf()` issues an SMTP server/client certificate."""

    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca("Contoso Example Root CA", None, self.root_key, years=20, depth=1)
        self.issuing_key = ec.generate_private_key(ec.SECP256R1())
        self.issuing = self._ca(
            "Contoso Example Issuing CA", self.root, self.issuing_key, years=15, depth=0
        )

    def _ca(
        self,
        cn: str,
        parent: x509.Certificate | None,
        key: ec.EllipticCurvePrivateKey,
        *,
        years: int,
        depth: int,
    ) -> x509.Certificate:
        signer = self.root_key if parent is not None else key
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(parent.subject if parent is not None else _name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.start)
            .not_valid_after(self.start + dt.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=depth), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        return builder.sign(signer, hashes.SHA256())

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def leaf(self, names: Sequence[str], *, days: int, client_auth: bool = True) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.SERVER_AUTH]
        if client_auth:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.issuing.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.start)
            .not_valid_after(self.start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issuing_key.public_key()),
                False,
            )
            .sign(self.issuing_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        return Issued(
            chain_pem=cert.public_bytes(pem) + self.issuing.public_bytes(pem),
            key_pem=key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )


# --------------------------------------------------------------------------- a smart host


class SmartHost:
    """A minimal STARTTLS listener on 127.0.0.1 whose certificate can be swapped ("deployed")."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.context: ssl.SSLContext | None = None
        self.server: asyncio.Server | None = None
        self.port = 0
        self._deployed = 0

    def deploy(self, issued: Issued) -> None:
        self._deployed += 1
        chain = self.folder / f"served-{self._deployed}.pem"
        key = self.folder / f"served-{self._deployed}.key"
        chain.write_bytes(issued.chain_pem)
        key.write_bytes(issued.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, key)
        self.context = context

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            writer.write(b"220 mail1.contoso.com ESMTP relaycheck demo\r\n")
            await writer.drain()
            tls = False
            while line := await reader.readline():
                verb = line.decode("ascii", "replace").strip().upper()
                if verb.startswith(("EHLO", "HELO")):
                    offer = b"" if tls else b"250-STARTTLS\r\n"
                    writer.write(b"250-mail1.contoso.com\r\n" + offer + b"250 8BITMIME\r\n")
                elif verb == "STARTTLS" and not tls and self.context is not None:
                    writer.write(b"220 2.0.0 SMTP server ready\r\n")
                    await writer.drain()
                    await writer.start_tls(self.context)
                    tls = True
                    continue
                elif verb == "QUIT":
                    writer.write(b"221 2.0.0 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 5.5.2 not in this demo\r\n")
                await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


# --------------------------------------------------------------------------- the story


def demo_config(example: Config, *, port: int, folder: Path) -> Config:
    """The Contoso example with its smart host, trust anchor and state moved to the demo."""
    tenant = example.tenant
    raw: dict[str, Any] = {
        "tenant": {
            "name": tenant.name,
            "accepted_domains": [d.name for d in tenant.accepted_domains],
            **(
                {"accepted_domains_file": str(tenant.accepted_domains_file)}
                if tenant.accepted_domains_file
                else {}
            ),
            **({"connectors_file": str(tenant.connectors_file)} if tenant.connectors_file else {}),
        },
        "connectors": [
            {
                "name": CONNECTOR,
                "tls_sender_certificate_name": "*.contoso.com",
                "certificate": {"endpoint": "mail1"},
            }
        ],
        "endpoints": [
            {"name": "mail1", "host": "mail1.contoso.com", "address": "127.0.0.1", "port": port}
        ],
        "forwards": [{"mailbox": f.mailbox, "to": f.to} for f in example.forwards],
        "trust": {"ca_file": str(folder / "demo-root.pem")},
        "probe": {"ehlo_name": "relaycheck.contoso.com", "timeout_seconds": 5},
        "state": {"path": str(folder / "demo-state.sqlite3")},
    }
    return parse_config(raw, base_dir=folder, source="<demo>")


@contextlib.asynccontextmanager
async def _running(host: SmartHost) -> AsyncIterator[SmartHost]:
    await host.start()
    try:
        yield host
    finally:
        await host.close()


async def _scheduled_run(
    config: Config, store: Store, now: dt.datetime, say: Callable[[str], None], out: TextIO
) -> None:
    result = await run_cycle(
        config, store, now=now, job="certificates", scan=_demo_scan, environ={}
    )
    say(render_table(result.findings, summarize(result.findings)))
    worker = DeliveryWorker(store, None, min_interval=0, out=out, now=lambda: now)
    await worker.drain()


async def _demo_scan(config: Config, **kwargs: Any) -> ScanReport:
    kwargs["only"] = DEMO_CHECKS
    return await run_scan(config, **kwargs)


async def run_demo(example_path: Path, *, out: TextIO, now: dt.datetime) -> int:
    """Tell the story; returns 0 when every step behaved as the story says."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    example = load_config(example_path)
    with tempfile.TemporaryDirectory(prefix="relaycheck-demo-") as tmp:
        folder = Path(tmp)
        pki = ExamplePki(now - dt.timedelta(days=30))
        (folder / "demo-root.pem").write_bytes(pki.root_pem())
        host = SmartHost(folder)
        host.deploy(pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=397))
        async with _running(host):
            config = demo_config(example, port=host.port, folder=folder)
            say(
                _(
                    "== A smart host for mail1.contoso.com listens on 127.0.0.1:{port} "
                    "(STARTTLS, certificate from a throwaway CA).\n"
                    "== Connector '{connector}' identifies it by *.contoso.com.\n"
                ).format(port=host.port, connector=CONNECTOR)
            )
            with Store.open(config.state.path) as store:
                say(_("== Scheduled run {number}").format(number=1))
                await _scheduled_run(config, store, now, say, out)
                renewal = pki.leaf(["smtp.contoso-mail.net"], days=397 + 30, client_auth=False)
                say(
                    _(
                        "== The certificate is renewed, with other names and without clientAuth. "
                        "Before it is bound: {command}\n"
                    ).format(command="relaycheck preflight mail1-renewed.pem")
                )
                checked = await judge(
                    config,
                    parse_certificate_bytes(renewal.chain_pem, "mail1-renewed.pem"),
                    requested=None,
                    source="mail1-renewed.pem",
                    now=now,
                    environ={},
                )
                say(render_preflight(checked))
                say(_("== The warning is ignored: the renewal is deployed.\n"))
                host.deploy(renewal)
                later = now + dt.timedelta(hours=6)
                say(_("== Scheduled run {number}").format(number=2))
                await _scheduled_run(config, store, later, say, out)
                open_findings = store.open_findings(now=later)
                open_checks = {f.finding.check for f in open_findings}
                refused = sorted(
                    {
                        f.finding.subject
                        for f in open_findings
                        if f.finding.check is CheckId.RELAY_SCENARIO
                    }
                )
                say(
                    _(
                        "== Relay readiness after the renewal: {scenarios} refused "
                        "(relay-scenario), before a single bounce.\n"
                    ).format(scenarios=", ".join(refused) or _("nothing"))
                )
            say(
                _("== During the incident: {command}").format(
                    command='relaycheck explain "<> -> john@fabrikam.com"'
                )
            )
            facts = load_tenant(config)
            certificates = await observe_connector_certificates(config, facts, now=later)
            answer = explain(
                parse_pair("<> -> john@fabrikam.com"),
                facts,
                forwards=config.forwards,
                certificates=certificates,
                now=later,
            )
            say(render_text(answer, now=later))
    caught = (
        checked.verdict is Verdict.BREAKS
        and {CheckId.SAN_COVERAGE, CheckId.RELAY_SCENARIO} <= open_checks
        and not answer.accepted
    )
    say(
        _(
            "== Caught: the preflight said the renewal that dropped the connector's name breaks "
            "relay before it was bound, and the run it was served reported it."
        )
        if caught
        else _("== The demo did not behave as expected.")
    )
    return 0 if caught else 1
