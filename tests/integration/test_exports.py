"""Tenant sources end to end: bad exports, Graph drift, and `relaycheck scan --only` for the
domain checks against the loopback DNS server (the rest of the scan runs on)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from checks.config import load_config
from checks.model import CheckId, Severity
from checks.sources import collect_tenant
from tests.fakes.graph import CLIENT_ID, TENANT_ID, GraphApi

NOW = datetime(2026, 6, 1, tzinfo=UTC)
CONNECTORS = [
    {
        "Name": "Inbound from Contoso on-prem",
        "Enabled": True,
        "ConnectorType": "OnPremises",
        "TlsSenderCertificateName": "*.contoso.com",
        "SenderIPAddresses": [],
    }
]
GOOD_DOMAINS = '[{"DomainName": "contoso.com", "DomainType": "Authoritative"}]'
BAD_EXPORTS = {
    "truncated-json": (b'[{"DomainName": "contoso.com", "DomainT', "not valid JSON"),
    "wrong-encoding": ('[{"DomainName": "café.com"}]'.encode("cp1252"), "not UTF-8 or UTF-16"),
    "missing-field": (b'[{"Name": "contoso.com", "DomainType": "Authoritative"}]', "no DomainName"),
}
ZONE = """
contoso.com. 300 IN MX 0 contoso-com.mail.protection.outlook.com.
contoso.com. 300 IN TXT "v=spf1 include:spf.protection.outlook.com -all"
contoso-com.mail.protection.outlook.com. 300 IN A 192.0.2.10
fabrikam.com. 300 IN MX 10 mx1.fabrikam.com.
fabrikam.com. 300 IN TXT "v=spf1 mx -all"
mx1.fabrikam.com. 300 IN A 127.0.0.1
"""


def graph_settings(graph_api: GraphApi, *, timeout_seconds: float | None = 2) -> dict[str, Any]:
    """`[microsoft365]` pointing at the loopback Graph stand-in."""
    settings: dict[str, Any] = {
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "graph_url": graph_api.url,
        "login_url": graph_api.url,
    }
    if timeout_seconds is not None:
        settings["timeout_seconds"] = timeout_seconds
    return settings


def write_config(
    tmp_path: Path,
    *,
    domains_export: bytes,
    dns_port: int | None = None,
    accepted: tuple[str, ...] = ("contoso.com",),
    sender_domains: tuple[str, ...] = (),
    graph: dict[str, Any] | None = None,
) -> Path:
    (tmp_path / "domains.json").write_bytes(domains_export)
    (tmp_path / "connectors.json").write_text(json.dumps(CONNECTORS), encoding="utf-8")
    lines = [
        "[tenant]",
        'name = "contoso"',
        f"accepted_domains = {json.dumps(list(accepted))}",
        'accepted_domains_file = "domains.json"',
        'connectors_file = "connectors.json"',
        f"sender_domains = {json.dumps(list(sender_domains))}",
        'mx_expected = ["exchange-online"]',
        "[dns]",
        'nameservers = ["127.0.0.1"]',
        f"port = {dns_port or 9}",
        "timeout_seconds = 0.3",
    ]
    if graph is not None:
        lines.append("[microsoft365]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in graph.items())
    path = tmp_path / "relaycheck.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", sorted(BAD_EXPORTS))
async def test_a_bad_export_is_one_finding_and_the_other_export_still_loads(
    tmp_path: Path, kind: str
) -> None:
    data, problem = BAD_EXPORTS[kind]
    config = load_config(write_config(tmp_path, domains_export=data))
    facts, findings = await collect_tenant(config, now=NOW, environ={})
    assert len(findings) == 1
    (finding,) = findings
    assert (finding.check, finding.severity) == (CheckId.TENANT_SOURCE, Severity.CRITICAL)
    assert problem in finding.message
    assert "domains.json" in finding.message
    assert "\n" not in finding.message
    # the connectors export still counts; accepted domains fall back to the config
    assert [c.tls_sender_certificate_name for c in facts.connectors] == ["*.contoso.com"]
    assert facts.accepted_names() == ("contoso.com",)


def test_scan_runs_on_with_a_bad_export(
    tmp_path: Path, dns_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server = dns_server(zone=ZONE)
    path = write_config(
        tmp_path,
        domains_export=BAD_EXPORTS["truncated-json"][0],
        dns_port=server.port,
        sender_domains=("fabrikam.com",),
    )
    code = main(["scan", "--config", str(path), "--only", "accepted-domain", "--json"])
    report = json.loads(capsys.readouterr().out)
    by_subject = {f["subject"]: f for f in report["findings"]}
    assert by_subject["Inbound from Contoso on-prem"]["severity"] == "ok"
    assert by_subject["fabrikam.com"]["details"]["scenario"] == "unregistered-sender"
    assert by_subject["fabrikam.com"]["severity"] == "info"  # the certificate connector carries it
    # the broken export is reported even under --only: it explains what the rest is based on
    assert {f["check"] for f in report["findings"]} == {"accepted-domain", "tenant-source"}
    assert code == 2


def test_scan_only_mx_and_only_dns(
    tmp_path: Path, dns_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server = dns_server(zone=ZONE)
    path = write_config(
        tmp_path,
        domains_export=b'[{"DomainName": "contoso.com"}, {"DomainName": "fabrikam.com"}]',
        dns_port=server.port,
        accepted=("contoso.com", "fabrikam.com"),
    )
    code = main(["scan", "--config", str(path), "--only", "mx", "--json"])
    mx = {f["subject"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert mx["contoso.com"]["severity"] == "ok"
    assert mx["fabrikam.com"]["cause"] == "unexpected-host"
    assert {f["check"] for f in mx.values()} == {"mx"}
    assert code == 2
    code = main(["scan", "--config", str(path), "--only", "dns", "--json"])
    dns = {f["subject"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    assert dns["contoso.com"]["cause"] == "spf"
    assert dns["fabrikam.com"]["cause"] == "spf-no-exo"
    assert code == 1
    assert {q[1] for q in server.queries} >= {"contoso.com.", "fabrikam.com.", "mx1.fabrikam.com."}


async def test_graph_replaces_config_domains_and_reports_drift(
    tmp_path: Path, graph_api: GraphApi
) -> None:
    graph = graph_settings(graph_api)
    config = load_config(
        write_config(
            tmp_path,
            domains_export=GOOD_DOMAINS.encode(),
            accepted=("contoso.com", "fabrikam.com"),
            graph=graph,
        )
    )
    env = {"RELAYCHECK_M365_CLIENT_SECRET": "s3cret"}
    facts, findings = await collect_tenant(config, now=NOW, environ=env)
    assert facts.accepted_names() == ("contoso.com", "contoso.onmicrosoft.com")
    assert "microsoft-graph" in facts.sources
    # the export's DomainType survives for a domain Graph confirms
    assert facts.accepted_domains[0].domain_type == "Authoritative"
    causes = {(f.subject, f.cause): f for f in findings}
    assert causes[("microsoft-graph", "")].severity is Severity.OK
    assert "not verified" in causes[("fabrikam.com", "drift-missing")].message
    assert causes[("contoso.onmicrosoft.com", "drift-appeared")].severity is Severity.INFO
    # with history: a domain from the last run that is gone now
    _, later = await collect_tenant(
        config, now=NOW, environ=env, previous_domains=frozenset({"contoso.com", "contoso.co.jp"})
    )
    gone = [f for f in later if f.cause == "drift-disappeared"]
    assert [(f.subject, f.severity) for f in gone] == [("contoso.co.jp", Severity.WARNING)]


async def test_graph_forbidden_leaves_config_facts_and_one_finding(
    tmp_path: Path, graph_api: GraphApi
) -> None:
    graph_api.domains_status = 403
    graph = graph_settings(graph_api, timeout_seconds=None)
    config = load_config(write_config(tmp_path, domains_export=GOOD_DOMAINS.encode(), graph=graph))
    facts, findings = await collect_tenant(
        config, now=NOW, environ={"RELAYCHECK_M365_CLIENT_SECRET": "x"}
    )
    assert facts.accepted_names() == ("contoso.com",)
    source = [f for f in findings if f.check is CheckId.TENANT_SOURCE]
    assert len(source) == 1
    assert "Domain.Read.All" in source[0].message


async def test_explain_sees_the_tenant_the_scan_sees(tmp_path: Path, graph_api: GraphApi) -> None:
    """With [microsoft365], Graph decides what is accepted for explain too, not only for scan."""
    from checks.explain import explain
    from checks.rules.addresses import parse_pair
    from checks.sources import explain_tenant

    graph = graph_settings(graph_api)
    # the config lists only fabrikam.com; the tenant (Graph) has contoso.onmicrosoft.com too
    config = load_config(
        write_config(
            tmp_path, domains_export=GOOD_DOMAINS.encode(), accepted=("fabrikam.com",), graph=graph
        )
    )
    env = {"RELAYCHECK_M365_CLIENT_SECRET": "s3cret"}
    facts = await explain_tenant(config, now=NOW, environ=env)
    assert "contoso.onmicrosoft.com" in facts.accepted_names()
    answer = explain(
        parse_pair("app@contoso.onmicrosoft.com -> x@tailspintoys.com"), facts, now=NOW
    )
    assert answer.scenario.value == "accepted-sender"
    # a failing Graph is a warning on the answer, not a silent half-tenant
    broken = await explain_tenant(config, now=NOW, environ={})
    assert any("RELAYCHECK_M365_CLIENT_SECRET" in note or "secret" in note for note in broken.notes)
