"""Both languages render every scenario, check id, triage status and alert kind.

Each is rendered through the real renderers (terminal text, Block Kit via slack_sdk's models,
alert drafts) in English and in Japanese: the Japanese differs from the English and is Japanese,
ids and codes stay as they are, and Japanese Slack answers stay within Block Kit's limits, which
count characters (Japanese text is about three bytes per character in UTF-8).
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.alerting.alerts import render_digest, render_event
from bot.slack.blocks import (
    MAX_HEADER_CHARS,
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_CHARS,
    explanation_message,
    help_message,
    home_view,
    status_message,
    triage_message,
)
from bot.terminal import render_text
from checks.config import parse_config
from checks.errors import RelaycheckError
from checks.explain import explain
from checks.i18n import (
    Language,
    LanguageError,
    current,
    format_day,
    language_from_environ,
    language_of_locale,
    parse_language,
    using,
)
from checks.model import (
    AcceptedDomain,
    AlertSettings,
    CheckId,
    Connector,
    Finding,
    Scenario,
    Severity,
    Thresholds,
)
from checks.rules.addresses import parse_pair
from checks.rules.certcheck import check_expiry
from checks.rules.lifecycle import CertificateSnapshot, Event, EventKind, certificate_changes
from checks.rules.replies import _ENTRIES, UNKNOWN_KEY, triage_all
from checks.rules.tenant import TenantFacts
from checks.titles import CHECK_TITLES, TRIAGE_TITLES, check_title, triage_title

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
FACTS = TenantFacts(
    name="contoso",
    accepted_domains=(AcceptedDomain(name="contoso.com", default=True),),
    connectors=(Connector(name="From on-prem", sender_ip_addresses=("203.0.113.10",)),),
)
PAIRS = {
    Scenario.TO_TENANT: "someone@internet.example -> kate@contoso.com",
    Scenario.ACCEPTED_SENDER: "kate@contoso.com -> kate@tailspintoys.com",
    Scenario.NDR: "<> -> someone@internet.example",
    Scenario.UNREGISTERED_SENDER: "john@fabrikam.com -> kate@tailspintoys.com",
    Scenario.FORWARDING: "john@fabrikam.com -> kate@tailspintoys.com via kate@contoso.com",
}
SETTINGS = AlertSettings(runbook_url="https://wiki.contoso.com/mail/relay")


def both(render: Any) -> tuple[Any, Any]:
    with using(Language.EN):
        english = render()
    with using(Language.JA):
        japanese = render()
    return english, japanese


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text Slack shows of these blocks (section, fields, header, context, buttons)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("text"), str):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(blocks)
    return found


def within_limits(blocks: list[dict[str, Any]], *, limit: int = MAX_MESSAGE_BLOCKS) -> None:
    assert len(blocks) <= limit
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER_CHARS
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_CHARS
        for element in block.get("elements", []) if block["type"] == "context" else []:
            assert len(element["text"]) <= 2000


def test_language_names_and_environment() -> None:
    assert parse_language("ja") is Language.JA
    assert parse_language("ja_JP.UTF-8") is Language.JA
    assert parse_language("EN") is Language.EN
    with pytest.raises(LanguageError) as caught:
        parse_language("fr")
    assert isinstance(caught.value, RelaycheckError)
    assert "'fr'" in str(caught.value)
    assert language_of_locale("ja-JP") is Language.JA
    assert language_of_locale("en-GB") is Language.EN
    assert language_of_locale("de-DE") is None
    assert language_from_environ({"LANG": "ja_JP.UTF-8"}) is Language.JA
    assert language_from_environ({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}) is Language.EN
    assert language_from_environ({"LC_MESSAGES": "ja_JP.eucJP"}) is Language.JA
    assert language_from_environ({}) is Language.EN


def test_dates_are_japanese_dates_in_japanese() -> None:
    english, japanese = both(lambda: format_day(date(2026, 12, 1)))
    assert english == "2026-12-01"
    assert japanese == "2026年12月1日"


def test_config_locale_language_is_validated() -> None:
    config = parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "locale": {"language": "ja"},
        },
        base_dir=__import__("pathlib").Path("."),
    )
    assert config.locale.language is Language.JA
    with pytest.raises(RelaycheckError) as caught:
        parse_config(
            {"tenant": {"name": "c", "accepted_domains": ["c.com"]}, "locale": {"language": "de"}},
            base_dir=__import__("pathlib").Path("."),
        )
    assert "locale.language" in str(caught.value)


async def test_a_language_is_per_task_not_per_process() -> None:
    """Two Slack requests at once, one per language: neither changes the other's answer."""
    seen: dict[str, list[str]] = {"en": [], "ja": []}

    async def answer(language: Language) -> None:
        with using(language):
            for _round in range(3):
                await asyncio.sleep(0)
                seen[language.value].append(Scenario.NDR.title)

    await asyncio.gather(answer(Language.EN), answer(Language.JA))
    assert set(seen["en"]) == {"Non-delivery report (NDR) to an internet sender"}
    assert set(seen["ja"]) == {"インターネット上の送信者への配信不能レポート (NDR)"}
    assert current() is Language.EN


@pytest.mark.parametrize("scenario", list(Scenario), ids=str)
def test_every_scenario_renders_in_both_languages(scenario: Scenario) -> None:
    result = explain(parse_pair(PAIRS[scenario]), FACTS, now=NOW)
    assert result.scenario is scenario
    (en_text, _en_slack), (ja_text, ja_slack) = both(
        lambda: (
            render_text(explain(parse_pair(PAIRS[scenario]), FACTS, now=NOW), now=NOW),
            explanation_message(
                explain(parse_pair(PAIRS[scenario]), FACTS, now=NOW), now=NOW, share_value="x"
            ).to_dict(),
        )
    )
    with using(Language.JA):
        title = scenario.title
    assert JAPANESE.search(title)
    assert title in ja_text
    assert scenario.value in ja_text  # ids stay English
    assert ja_text != en_text
    assert "Scenario:" in en_text
    assert "Scenario:" not in ja_text
    shown = " ".join(texts(ja_slack["blocks"]))
    assert title in shown
    within_limits(ja_slack["blocks"])


@pytest.mark.parametrize("check", list(CheckId), ids=str)
def test_every_check_id_has_a_title_and_renders_in_both_alert_languages(check: CheckId) -> None:
    assert check in CHECK_TITLES, f"add {check.value} to checks/titles.py CHECK_TITLES"
    english, japanese = both(lambda: check_title(check))
    assert JAPANESE.search(japanese)
    assert japanese != english
    finding = Finding(check=check, severity=Severity.WARNING, subject="mail1", message="x")
    event = Event(id=f"opened:{check.value}@1", kind=EventKind.OPENED, at=NOW, findings=(finding,))
    (en,), (ja,) = both(lambda: render_event(event, SETTINGS))
    ja_shown = " ".join(texts(list(ja.blocks)))
    assert japanese in ja_shown
    assert check.value in ja_shown
    assert f"#{check.value}" in json.dumps(ja.blocks)  # the runbook section of this check
    assert en.blocks != ja.blocks
    within_limits(list(ja.blocks))


def _canonical(key: str) -> str:
    if key == UNKNOWN_KEY:
        return "550 5.7.999 something new\n\n550 5.7.64 Relay Access Denied ATTR36"
    return next(e.triage.reply for e in _ENTRIES if e.triage.key == key)


@pytest.mark.parametrize("key", [*(e.triage.key for e in _ENTRIES), UNKNOWN_KEY])
def test_every_triage_status_renders_in_both_languages(key: str) -> None:
    assert key in TRIAGE_TITLES
    answers = triage_all(_canonical(key))
    assert key in {a.key for a in answers}
    (en_msg, en_title), (ja_msg, ja_title) = both(
        lambda: (
            triage_message(triage_all(_canonical(key)), runbook_url=SETTINGS.runbook_url).to_dict(),
            triage_title(key),
        )
    )
    assert JAPANESE.search(ja_title)
    assert ja_title != en_title
    shown = " ".join(texts(ja_msg["blocks"]))
    assert ja_title in shown
    assert JAPANESE.search(shown)
    assert en_msg != ja_msg
    assert f"{SETTINGS.runbook_url}#{answers[0].key}" in json.dumps(ja_msg["blocks"])
    within_limits(ja_msg["blocks"])


def _events() -> dict[EventKind, Event]:
    finding = Finding(
        check=CheckId.CERT_EXPIRY, severity=Severity.CRITICAL, subject="mail1", message="x"
    )

    def snap(fp: str, names: tuple[str, ...]) -> CertificateSnapshot:
        return CertificateSnapshot(
            source="mail1/192.0.2.25",
            fingerprint=fp * 32,
            subject="CN=mail1.contoso.com",
            issuer="CN=R3",
            names=names,
            not_after=NOW + timedelta(days=90),
            chain_length=2,
        )

    (changed,) = certificate_changes(
        {"s": snap("aa", ("*.contoso.com",))}, {"s": snap("bb", ("mail1.contoso.com",))}, now=NOW
    )
    events = {
        kind: Event(
            id=f"{kind.value}:x@1",
            kind=kind,
            at=NOW,
            findings=(finding,),
            reason="because",
            reply_to="opened:x@1",
        )
        for kind in EventKind
        if kind is not EventKind.CERT_CHANGED
    }
    events[EventKind.CERT_CHANGED] = changed
    return events


@pytest.mark.parametrize("kind", list(EventKind), ids=str)
def test_every_alert_kind_renders_in_both_languages(kind: EventKind) -> None:
    event = _events()[kind]
    english, japanese = both(lambda: render_event(event, SETTINGS))
    assert japanese
    assert len(japanese) == len(english)
    for en, ja in zip(english, japanese, strict=True):
        ja_text = " ".join([ja.text, *texts(list(ja.blocks))])
        assert JAPANESE.search(ja_text), ja_text
        assert ja.text != en.text or ja.blocks != en.blocks
        within_limits(list(ja.blocks))


def test_the_digest_status_help_and_home_render_in_japanese_within_limits() -> None:
    config = parse_config(
        {
            "tenant": {"name": "contoso", "accepted_domains": ["contoso.com"]},
            "connectors": [{"name": "From on-prem", "sender_ip_addresses": ["203.0.113.10"]}],
        },
        base_dir=__import__("pathlib").Path("."),
    )
    cert = CertificateSnapshot(
        source="mail1/192.0.2.25",
        fingerprint="ab" * 32,
        subject="CN=mail1.contoso.com",
        issuer="CN=R3",
        names=("mail1.contoso.com",),
        not_after=datetime(2026, 12, 20, tzinfo=UTC),
        chain_length=2,
    )
    with using(Language.JA):
        digest = render_digest([], [cert], now=NOW, settings=SETTINGS, digest_id="d@1")
        status = status_message([], last_run=None, now=NOW).to_dict()
        helped = help_message("入力がありません").to_dict()
        home = home_view(
            config, facts=None, certificates={"mail1": cert}, findings=[], last_run=None, now=NOW
        ).to_dict()
    assert "2026年12月1日" in json.dumps(list(digest.blocks), ensure_ascii=False)
    assert "2026年12月20日" in json.dumps(list(digest.blocks), ensure_ascii=False)
    for blocks in (list(digest.blocks), status["blocks"], helped["blocks"]):
        assert JAPANESE.search(" ".join(texts(blocks)))
        within_limits(blocks)
    assert "承認済みドメイン" in " ".join(texts(home["blocks"]))
    within_limits(home["blocks"], limit=100)


def test_a_long_japanese_answer_is_cut_by_characters_not_bytes() -> None:
    """Forty statuses in one paste: the Japanese answer still fits one Slack message."""
    text = "\n".join(f"550 5.7.{n} TenantAttribution; Relay Access Denied" for n in range(100, 140))
    with using(Language.JA):
        rendered = triage_message(triage_all(text)).to_dict()
    within_limits(rendered["blocks"])
    section_texts = [b["text"]["text"] for b in rendered["blocks"] if b["type"] == "section"]
    assert any(len(t.encode("utf-8")) > len(t) + 100 for t in section_texts)  # really Japanese


def test_certificate_expiry_findings_are_written_in_the_language_of_the_run(pki: Any) -> None:
    """A scheduled run in Japanese writes cert-expiry's message (and so its alert) in Japanese."""
    leaf = pki.leaf(days=3).facts
    english, japanese = both(
        lambda: check_expiry(
            "mail1", leaf, now=pki.now, thresholds=Thresholds(), cause="", details={}
        )
    )
    assert "expires on" in english.message
    assert "の有効期限は" in japanese.message
    assert "(残り 3 日)" in japanese.message
    assert "年" in japanese.message  # a Japanese date
    assert (japanese.check, japanese.severity, japanese.subject) == (
        english.check,
        english.severity,
        english.subject,
    )


def test_dns_findings_and_config_problems_are_written_in_the_language_of_the_run() -> None:
    from checks.rules.dns import DomainDns, Lookup, Outcome, spf_findings

    obs = DomainDns(
        domain="contoso.com",
        mx=Lookup(name="contoso.com", rdtype="MX", outcome=Outcome.ANSWER),
        spf={
            "contoso.com": Lookup(
                name="contoso.com", rdtype="TXT", outcome=Outcome.ANSWER, texts=("v=spf1 -all",)
            )
        },
    )
    english = spf_findings(obs)[0].message
    assert english.startswith("SPF of contoso.com does not include spf.protection.outlook.com")
    with using(Language.JA):
        japanese = spf_findings(obs)[0].message
        with pytest.raises(RelaycheckError) as raised:
            parse_config(
                {"tenant": {"name": "x", "bogus": 1}},
                base_dir=__import__("pathlib").Path("."),
                source="relaycheck.toml",
            )
    assert japanese.startswith(
        "contoso.com の SPF に spf.protection.outlook.com が含まれていません"
    )
    assert "Exchange Online" in japanese
    assert "不明なキー" in str(raised.value)
