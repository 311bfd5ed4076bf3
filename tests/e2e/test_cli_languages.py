"""The CLI in Japanese: --lang, LC_ALL/LC_MESSAGES/LANG, [locale] language; triage of files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.data.bounces import ATTR35, TENANT_ATTRIBUTION, ndr, ndr_ja, postfix

REPO = Path(__file__).resolve().parents[2]
IP_ONLY = REPO / "examples" / "contoso-ip-only" / "relaycheck.toml"
PAIR = "john@fabrikam.com -> kate@tailspintoys.com"


def relaycheck(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        cwd=REPO,
        input=stdin,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def out(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode("utf-8")


def test_lang_ja_explain_speaks_japanese_and_keeps_ids() -> None:
    text = out(relaycheck("--lang", "ja", "explain", "--config", str(IP_ONLY), PAIR))
    assert "シナリオ:    forwarding - オンプレミスから外部アドレスへの転送" in text
    assert "判定:        拒否: 550 5.7.64 Relay Access Denied ATTR36" in text
    assert "承認済みドメインではありません" in text
    english = out(relaycheck("--lang", "en", "explain", "--config", str(IP_ONLY), PAIR))
    assert "Scenario:    forwarding - On-premises forward to an external address" in english


def test_the_environment_chooses_japanese_unless_lang_says_otherwise() -> None:
    for env in ({"LANG": "ja_JP.UTF-8"}, {"LC_MESSAGES": "ja_JP.UTF-8"}, {"LC_ALL": "ja_JP"}):
        assert "シナリオ:" in out(relaycheck("explain", "--config", str(IP_ONLY), PAIR, env=env))
    assert "Scenario:" in out(
        relaycheck("explain", "--config", str(IP_ONLY), PAIR, env={"LC_ALL": "C", "LANG": "ja_JP"})
    )
    assert "Scenario:" in out(
        relaycheck("--lang", "en", "explain", "--config", str(IP_ONLY), PAIR, env={"LANG": "ja_JP"})
    )


def test_locale_language_in_the_config(tmp_path: Path) -> None:
    config = tmp_path / "relaycheck.toml"
    config.write_text(
        IP_ONLY.read_text(encoding="utf-8")
        .replace("[tenant]", '[locale]\nlanguage = "ja"\n\n[tenant]', 1)
        .replace('"exports/', f'"{IP_ONLY.parent}/exports/'),
        encoding="utf-8",
    )
    assert "シナリオ:" in out(relaycheck("explain", "--config", str(config), PAIR))
    assert "Scenario:" in out(relaycheck("--lang", "en", "explain", "--config", str(config), PAIR))
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[locale]\nlanguage = "fr"\n[tenant]\nname = "c"\naccepted_domains = ["c.com"]\n'
    )
    done = relaycheck("config", "check", str(bad))
    assert done.returncode == 2
    assert b"locale.language" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    wrong = relaycheck("--lang", "fr", "explain", PAIR)
    assert wrong.returncode == 2
    assert len(wrong.stderr.splitlines()) == 1


def test_triage_reads_a_whole_ndr_file_and_a_japanese_one(tmp_path: Path) -> None:
    english = tmp_path / "ndr.eml"
    english.write_text(ndr("kate@tailspintoys.com", TENANT_ATTRIBUTION, status="5.7.64") * 20)
    assert english.stat().st_size > 9000
    data = json.loads(out(relaycheck("triage", "--json", str(english))))
    assert [s["code"] for s in data["statuses"]] == ["550 5.7.64 TenantAttribution"]
    japanese = tmp_path / "ndr-ja.txt"
    japanese.write_bytes(ndr_ja("kate@tailspintoys.com", TENANT_ATTRIBUTION).encode("cp932"))
    text = out(relaycheck("--lang", "ja", "triage", str(japanese)))
    assert text.startswith("550 5.7.64 TenantAttribution: OnPremises の受信コネクタが")
    assert "恒久的エラー (5.x.x)" in text


def test_triage_from_stdin_explains_two_errors_in_order_with_the_tenant() -> None:
    log = (
        postfix(ATTR35, dsn="4.4.62", status="deferred")
        + "\n"
        + postfix("550 5.7.64 Relay Access Denied ATTR36", dsn="5.7.64", status="bounced")
    )
    done = relaycheck("triage", "--json", "--config", str(IP_ONLY), "-", stdin=log.encode())
    data = json.loads(out(done))
    assert [(s["code"], s["class"]) for s in data["statuses"]] == [
        ("451 4.4.62 ATTR35", "temporary"),
        ("550 5.7.64 ATTR36", "permanent"),
    ]
    assert any(
        "your only OnPremises connector 'From on-prem' is IP-based" in h
        for h in data["statuses"][1]["hints"]
    )
    text = out(relaycheck("triage", "--config", str(IP_ONLY), "-", stdin=log.encode()))
    assert text.startswith("2 different statuses in the text, in order of appearance:")
    assert text.index("451 4.4.62 ATTR35") < text.index("550 5.7.64 ATTR36")
    assert "seed" not in text
    assert "brief" not in text


def test_unknown_code_with_a_known_token_keeps_the_pasted_code() -> None:
    data = json.loads(
        out(
            relaycheck(
                "triage",
                "--json",
                "550 5.7.51 TenantInboundAttribution; Rejecting message because ...",
            )
        )
    )
    assert data["code"] == "550 5.7.51 TenantInboundAttribution"
    assert data["known_code"] is False
    assert data["message"].startswith(
        "code 5.7.51 is not one relaycheck knows; the token TenantInboundAttribution usually means"
    )
    ja = json.loads(
        out(
            relaycheck(
                "--lang", "ja", "triage", "--json", "550 5.7.51 TenantInboundAttribution; Rejecting"
            )
        )
    )
    assert ja["message"].startswith("コード 5.7.51 は relaycheck が知らないコードです")
    assert ja["code"] == "550 5.7.51 TenantInboundAttribution"


def test_more_than_a_megabyte_is_refused_in_one_line(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    big.write_bytes(b"ATTR36 " * 160_000)
    done = relaycheck("triage", str(big))
    assert done.returncode == 2
    assert b"too long" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_scan_json_messages_follow_the_language_and_keys_stay_english() -> None:
    config = str(REPO / "examples" / "contoso" / "relaycheck.toml")
    args = ("scan", "--config", config, "--only", "accepted-domain", "--json")
    ja = json.loads(out(relaycheck("--lang", "ja", *args)))
    en = json.loads(out(relaycheck("--lang", "en", *args)))
    assert [f["check"] for f in ja["findings"]] == [f["check"] for f in en["findings"]]
    assert {f["subject"] for f in ja["findings"]} == {"Inbound from Contoso on-prem", "contoso.com"}
    messages = {f["subject"]: f["message"] for f in ja["findings"]}
    assert messages["contoso.com"].startswith("送信者ドメイン contoso.com は承認済みです")
    assert {f["subject"]: f["message"] for f in en["findings"]}["contoso.com"].startswith(
        "sender domain contoso.com is accepted"
    )
    table = out(relaycheck("--lang", "ja", *args[:-1], "--all"))
    assert table.startswith("重要度    チェック")


def test_relay_readiness_reads_the_same_in_both_languages() -> None:
    args = ("scan", "--config", str(IP_ONLY), "--only", "relay-scenario", "--json")
    ja = json.loads(out_any(relaycheck("--lang", "ja", *args)))
    en = json.loads(out_any(relaycheck("--lang", "en", *args)))

    def pick(data: dict[str, Any]) -> list[tuple[str, str, bool]]:
        return [(f["subject"], f["severity"], f["details"]["accepted"]) for f in data["findings"]]

    assert pick(ja) == pick(en)
    refused = {f["subject"]: f["message"] for f in ja["findings"]}
    assert refused["ndr"].startswith(
        "オンプレミスからインターネット上の送信者への配信不能レポート (NDR)"
    )
    assert refused["ndr"].endswith("は拒否されます: 550 5.7.64 Relay Access Denied ATTR36")


def out_any(done: subprocess.CompletedProcess[bytes]) -> str:
    """stdout of a command whose exit code is a verdict (scan: 2 when critical)."""
    assert done.returncode in (0, 1, 2), done.stderr.decode()
    return done.stdout.decode("utf-8")
