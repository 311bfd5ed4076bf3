"""`relaycheck preflight CERT` through the CLI entry point, with certificates made by the tests.

The tenant is KB 3169958's Contoso: a certificate connector `*.contoso.com` whose certificate is
the MTA's file, an IP connector for the scanner, kate's forward to Tailspin Toys. Each renewal
is one trap a mail admin meets in the wild, and each test asserts the verdict line, the exit
code and the finding that carries the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from bot.cli.main import main
from tests.fakes.pki import Issued, Pki

REPO = Path(__file__).resolve().parents[2]
CONNECTOR = "Inbound from Contoso on-prem"
TENANT_ATTRIBUTION = "550 5.7.64 TenantAttribution"


def write_config(pki: Pki, current: Issued, *, extra: str = "", ip_connector: bool = True) -> Path:
    """The Contoso tenant with `current` as today's connector certificate file."""
    scanner = (
        '[[connectors]]\nname = "Scanner relay (IP)"\nsender_ip_addresses = ["203.0.113.10"]\n'
        if ip_connector
        else ""
    )
    current.write_pem(pki.tmp_path / "current.pem")
    path = pki.tmp_path / "relaycheck.toml"
    path.write_text(
        f"""
[tenant]
name = "contoso"
accepted_domains = ["contoso.com"]
sender_domains = ["contoso.com"]

[[connectors]]
name = "{CONNECTOR}"
tls_sender_certificate_name = "*.contoso.com"
certificate = {{ file = "current.pem" }}

{scanner}
[[forwards]]
mailbox = "kate@contoso.com"
to = "kate@tailspintoys.com"

[trust]
ca_file = "{pki.ca_file.name}"

[dns]
enabled = false
{extra}
""",
        encoding="utf-8",
    )
    return path


def preflight(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    code = main(["preflight", "--config", str(config), "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def relay(findings: list[dict[str, Any]]) -> dict[str, bool]:
    return {
        f["subject"]: f["details"]["accepted"] for f in findings if f["check"] == "relay-scenario"
    }


def problems(findings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (f["check"], f["severity"]) for f in findings if f["severity"] in ("warning", "critical")
    }


@pytest.fixture
def current(pki: Pki) -> Issued:
    return pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=20)


def test_renewal_keeping_the_names_is_safe(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(pki, current)
    renewal = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=380)
    cert = renewal.write_pem(pki.tmp_path / "renewed.pem")
    code, data = preflight(capsys, config, str(cert))
    assert code == 0
    assert data["verdict"] == "SAFE TO BIND"
    # today's certificate expires in 20 days (a warning); the renewal fixes it
    assert ("cert-expiry", "warning") in problems(data["before"])
    assert problems(data["after"]) == set()
    assert relay(data["after"]) == {"accepted-sender": True, "ndr": True, "forwarding": True}
    assert data["changes"]["names_added"] == []
    assert data["changes"]["names_removed"] == []
    assert data["changes"]["issuer_changed"] is False
    assert data["send_connector"]["changed"] is False
    assert data["steps"][0].startswith("Bind the certificate")
    assert data["steps"][-1].endswith("relaycheck scan --only relay-scenario")

    main(["preflight", "--config", str(config), str(cert)])
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "SAFE TO BIND"
    assert re.search(r"^relay-scenario +ndr +relays via '.+' +relays via '.+'$", text, re.M)
    assert "Steps:" in text


def test_renewal_dropping_the_contoso_names_breaks_ndr_and_forwarding(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(pki, current)
    cert = pki.leaf(["smtp.contoso-mail.net"], days=380).write_pem(pki.tmp_path / "renewed.pem")
    code, data = preflight(capsys, config, str(cert))
    assert code == 2
    # the on-prem server still matches the IP connector, so the refusal is ATTR36
    assert data["verdict"] == (
        "BINDING BREAKS RELAY: NDRs and forwards would be refused with "
        "550 5.7.64 Relay Access Denied ATTR36"
    )
    assert relay(data["before"]) == {"accepted-sender": True, "ndr": True, "forwarding": True}
    # ordinary outbound mail still relays over the IP connector; the KB scenarios do not
    assert relay(data["after"]) == {"accepted-sender": True, "ndr": False, "forwarding": False}
    assert ("san-coverage", "critical") in problems(data["after"])
    assert data["changes"]["names_removed"] == ["mail1.contoso.com", "mail2.contoso.com"]
    assert data["changes"]["names_added"] == ["smtp.contoso-mail.net"]

    main(["preflight", "--config", str(config), str(cert)])
    text = capsys.readouterr().out
    assert text.startswith("BINDING BREAKS RELAY: NDRs and forwards would be refused with ")
    assert re.search(r"^relay-scenario +ndr +relays via .+ +REFUSED 550 5.7.64 ", text, re.M)

    # without the IP connector the session matches no connector at all: TenantAttribution
    config = write_config(pki, current, ip_connector=False)
    code, data = preflight(capsys, config, str(cert))
    assert code == 2
    assert data["verdict"] == (
        "BINDING BREAKS RELAY: mail from accepted domains, NDRs and forwards would be refused "
        "with 550 5.7.64 TenantAttribution; Relay Access Denied SMTP"
    )


def test_renewal_under_a_new_intermediate_changes_the_send_connector_selector(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(pki, current)
    new_ca = pki.make_intermediate(days=1825, name="Relaycheck Test Issuing CA 2026")
    renewal = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=380, intermediate=new_ca)
    cert = renewal.write_pem(pki.tmp_path / "renewed.pem")
    code, data = preflight(capsys, config, str(cert))
    assert code == 1
    assert data["verdict"].startswith("BIND WITH CARE: the issuer or subject changes")
    assert "454 4.7.5" in data["verdict"]
    assert problems(data["after"]) == set()
    assert set(relay(data["after"]).values()) == {True}
    selector = data["send_connector"]
    assert selector["changed"] is True
    expected = (
        "<I>CN=Relaycheck Test Issuing CA 2026, O=Relaycheck Test"
        "<S>CN=mail1.contoso.com, O=Contoso Mail"
    )
    assert selector["tls_certificate_name"] == expected
    assert selector["previous"].startswith("<I>CN=Relaycheck Test Issuing CA, O=")
    assert data["changes"]["issuer_changed"] is True
    assert any(
        step.startswith("Update the send connector") and f"-TlsCertificateName '{expected}'" in step
        for step in data["steps"]
    )
    assert [s.split(" ")[0] for s in data["steps"]] == ["Bind", "Update", "Verify"]
    assert "-Identity '<send connector to Exchange Online>'" in data["steps"][1]

    code, data = preflight(capsys, config, "--send-connector", "Outbound to Office 365", str(cert))
    assert code == 1
    assert data["send_connector"]["command"] == (
        f"Set-SendConnector -Identity 'Outbound to Office 365' -TlsCertificateName '{expected}'"
    )


def test_renewal_without_client_auth_needs_care_and_says_why(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(pki, current)
    renewal = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=380, client_auth=False)
    cert = renewal.write_pem(pki.tmp_path / "renewed.pem")
    code, data = preflight(capsys, config, str(cert))
    assert code == 1
    assert data["verdict"].startswith("BIND WITH CARE: cert-eku: ")
    assert "clientAuth" in data["verdict"]
    assert "is not documented" in data["verdict"]  # why: whether EXO enforces it is unknown
    assert problems(data["after"]) == {("cert-eku", "warning")}
    assert data["changes"]["client_auth_dropped"] is True
    assert set(relay(data["after"]).values()) == {True}


def test_renewal_sent_without_its_intermediate_breaks_relay(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(pki, current)
    renewal = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=380)
    cert = renewal.write_pem(pki.tmp_path / "renewed.pem", with_intermediates=False)
    code, data = preflight(capsys, config, str(cert))
    assert code == 2
    assert data["verdict"].startswith("BINDING BREAKS RELAY: NDRs and forwards would be refused")
    assert ("cert-chain", "critical") in problems(data["after"])
    assert data["changes"]["chain_length"] == [2, 1]
    assert data["steps"][0].startswith("Before binding: Send the full chain")

    # the same leaf followed by the chain file the server will send is fine again
    chain = pki.tmp_path / "intermediate.pem"
    chain.write_bytes(pki.intermediate.public_bytes(serialization.Encoding.PEM))
    code, data = preflight(capsys, config, str(cert), str(chain))
    assert code == 0, data["verdict"]


def test_pfx_with_a_wrong_password_is_one_line_and_exit_3(pki: Pki, current: Issued) -> None:
    config = write_config(pki, current)
    renewal = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=380)
    pfx = renewal.write_pfx(pki.tmp_path / "renewed.pfx", b"right password")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "preflight",
            "--config",
            str(config),
            "--password-env",
            "RENEWAL_PFX_PASSWORD",
            str(pfx),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", "RENEWAL_PFX_PASSWORD": "wrong password"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert done.stdout == ""
    assert done.stderr.splitlines() == [f"relaycheck: error: {pfx}: wrong or missing PFX password"]


def test_pfx_with_the_right_password_is_judged(
    pki: Pki,
    current: Issued,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write_config(pki, current)
    renewal = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=380)
    pfx = renewal.write_pfx(pki.tmp_path / "renewed.pfx", b"right password")
    monkeypatch.setenv("RENEWAL_PFX_PASSWORD", "right password")
    code, data = preflight(capsys, config, "--password-env", "RENEWAL_PFX_PASSWORD", str(pfx))
    assert code == 0, data["verdict"]
    assert data["certificate"]["fingerprint_sha256"] == renewal.fingerprint

    code = main(["preflight", "--config", str(config), str(pfx)])
    assert code == 3
    assert "pass --password-env VAR" in capsys.readouterr().err


def test_ambiguous_and_unknown_for_list_the_candidates(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = """
[[endpoints]]
name = "mail1"
host = "mail1.contoso.com"
address = "127.0.0.1"
port = 9

[[endpoints]]
name = "mail2"
host = "mail2.contoso.com"
address = "127.0.0.1"
port = 9
"""
    config = write_config(pki, current, extra=endpoints)
    cert = pki.leaf(["mail1.contoso.com"], days=380).write_pem(pki.tmp_path / "renewed.pem")

    assert main(["preflight", "--config", str(config), "--for", "mail", str(cert)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "relaycheck: error: --for 'mail' is ambiguous: it names endpoint 'mail1', "
        "endpoint 'mail2'; pass one of them"
    ]

    assert main(["preflight", "--config", str(config), "--for", "mail3", str(cert)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "relaycheck: error: --for 'mail3': no connector or endpoint of that name; candidates: "
        f"connector '{CONNECTOR}', endpoint 'mail1', endpoint 'mail2'"
    ]


def test_without_for_two_certificate_connectors_are_told_apart_by_names(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    other = pki.leaf(["relay.contoso.com"], days=200)
    other.write_pem(pki.tmp_path / "relay.pem")
    second = """
[[connectors]]
name = "Inbound from the relay pool"
tls_sender_certificate_name = "relay.contoso.com"
certificate = { file = "relay.pem" }
"""
    config = write_config(pki, current, extra=second)
    cert = pki.leaf(["relay.contoso.com"], days=380).write_pem(pki.tmp_path / "renewed.pem")
    code, data = preflight(capsys, config, str(cert))
    assert code == 0, data["verdict"]
    assert data["target"]["name"] == "Inbound from the relay pool"

    stranger = pki.leaf(["www.fabrikam.com"], days=380).write_pem(pki.tmp_path / "other.pem")
    assert main(["preflight", "--config", str(config), str(stranger)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "pass --for with one of:" in err[0]
    assert f"connector '{CONNECTOR}'" in err[0]
    assert "connector 'Inbound from the relay pool'" in err[0]


def test_unreadable_cert_is_one_line_and_exit_3(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(pki, current)
    missing = pki.tmp_path / "nope.pem"
    assert main(["preflight", "--config", str(config), str(missing)]) == 3
    assert capsys.readouterr().err.splitlines() == [f"relaycheck: error: {missing}: file not found"]
    garbage = pki.tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate")
    assert main(["preflight", "--config", str(config), str(garbage)]) == 3
    assert len(capsys.readouterr().err.splitlines()) == 1


def test_a_tenant_without_certificate_connectors_or_endpoints_says_so(
    pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = pki.leaf(["mail1.contoso.com"], days=380).write_pem(pki.tmp_path / "renewed.pem")
    ip_only = REPO / "examples" / "contoso-ip-only" / "relaycheck.toml"
    assert main(["preflight", "--config", str(ip_only), str(cert)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert "no certificate connector and no endpoint" in err[0]


def test_japanese_output_keeps_the_english_verdict_prefix(
    pki: Pki, current: Issued, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(pki, current)
    cert = pki.leaf(["smtp.contoso-mail.net"], days=380).write_pem(pki.tmp_path / "renewed.pem")
    code = main(["--lang", "ja", "preflight", "--config", str(config), str(cert)])
    text = capsys.readouterr().out
    assert code == 2
    # scripts match the uppercase prefix in every language; the explanation after it is Japanese
    assert text.startswith("BINDING BREAKS RELAY: 配信不能レポート (NDR)、転送 は ")
    assert "手順:" in text
    assert "削除された名前: mail1.contoso.com, mail2.contoso.com" in text

    renewal = pki.leaf(["mail1.contoso.com", "mail2.contoso.com"], days=380)
    safe = renewal.write_pem(pki.tmp_path / "safe.pem")
    main(["--lang", "ja", "preflight", "--config", str(config), "--json", str(safe)])
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "SAFE TO BIND"
    assert data["steps"][0].startswith("証明書 (")
