"""Triage of Exchange Online replies: every row of DOMAIN.md section 4, as pasted in real life."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.errors import RelaycheckError
from checks.model import CheckId, Scenario
from checks.rules.replies import KNOWN_CODES, MAX_INPUT_LENGTH, TriageInputError, triage

# (verbatim reply, expected key, check ids that must be named)
ROWS = [
    (
        "550 5.7.64 Relay Access Denied ATTR36",
        "attr36",
        {CheckId.ACCEPTED_DOMAIN},
    ),
    (
        "451 4.4.4 Relay Access Denied, unrecognized sender domain. ATTR36",
        "attr36",
        {CheckId.ACCEPTED_DOMAIN},
    ),
    (
        "550 5.7.64 TenantAttribution; Relay Access Denied SMTP",
        "tenant-attribution",
        {CheckId.SAN_COVERAGE, CheckId.CERT_CHAIN, CheckId.CERT_EXPIRY, CheckId.TLS_HANDSHAKE},
    ),
    (
        "451 4.4.62 Mail sent to the wrong Office 365 region. ATTR35",
        "wrong-region",
        {CheckId.MX},
    ),
    (
        "550 5.7.68 TenantInboundAttribution; Direct Send not allowed for this organization "
        "from unauthorized sources",
        "direct-send-rejected",
        {CheckId.SAN_COVERAGE},
    ),
    (
        "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains",
        "unregistered-domains",
        {CheckId.ACCEPTED_DOMAIN},
    ),
    (
        "450 4.4.317 Cannot connect to remote server [Message=UntrustedRoot]",
        "untrusted-root",
        {CheckId.CERT_CHAIN},
    ),
    (
        "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could "
        "not be found",
        "send-connector-certificate",
        {CheckId.CERT_CHANGED, CheckId.CERT_NOT_DEPLOYED},
    ),
    (
        "450 4.7.230 Connecting Exchange server version is out-of-date; connection to Exchange "
        "Online throttled for 10 mins/hr.",
        "out-of-date-exchange",
        set(),
    ),
    (
        "550 5.7.230 Connecting Exchange server version is out-of-date; connection to Exchange "
        "Online blocked for 10 mins/hr.",
        "out-of-date-exchange",
        set(),
    ),
    (
        "421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
        "support TLS 1.2.",
        "legacy-tls",
        {CheckId.TLS_HANDSHAKE},
    ),
    ("5.7.705 Access denied, tenant has exceeded threshold", "tenant-threshold", set()),
    (
        "550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP",
        "ip-not-accepted",
        set(),
    ),
    (
        "554 5.4.14 Hop count exceeded - possible mail loop ATTR34",
        "mail-loop",
        {CheckId.ACCEPTED_DOMAIN},
    ),
]


def _variants(reply: str) -> list[str]:
    """The reply as on-call engineers paste it: in an NDR, a queue viewer, Slack, a log line."""
    return [
        reply,
        reply.lower(),
        reply.upper(),
        f"Remote Server returned '{reply}'",
        f"LastError: [{{LRT=2025-06-01 10:00:00}};{{LED={reply}}};{{FQDN=}};{{IP=}}]",
        f"&lt;mail.contoso.com #{reply}&gt; &amp; more",
        f"2025-06-01T10:00:00.000Z,SendConnector,08DC,3,10.0.0.5:25,52.101.1.1:25,<,{reply},",
        f"  {reply}\n\nDiagnostic information for administrators: see above\n",
    ]


@pytest.mark.parametrize(("reply", "key", "checks"), ROWS)
def test_every_row_is_recognised_with_extra_text_case_and_slack_escaping(
    reply: str, key: str, checks: set[CheckId]
) -> None:
    for text in _variants(reply):
        result = triage(text)
        assert result is not None, text
        assert result.key == key, text
        assert checks <= set(result.check_ids)
        assert result.meaning
        assert result.causes
        assert result.fixes
        assert result.matched


def test_tenant_attribution_names_the_certificate_checks_in_order() -> None:
    result = triage("550 5.7.64 TenantAttribution; Relay Access Denied SMTP")
    assert result is not None
    assert result.code == "550 5.7.64 TenantAttribution"
    assert result.check_ids[:4] == (
        CheckId.SAN_COVERAGE,
        CheckId.CERT_CHAIN,
        CheckId.CERT_EXPIRY,
        CheckId.TLS_HANDSHAKE,
    )
    assert result.matched == ("TenantAttribution",)
    assert result.also == ()  # the generic 5.7.64 fallback is not repeated


def test_attr36_names_accepted_domain_and_the_certificate_scenarios() -> None:
    result = triage("Remote Server returned '550 5.7.64 Relay Access Denied ATTR36. For more")
    assert result is not None
    assert result.check_ids[0] is CheckId.ACCEPTED_DOMAIN
    assert set(result.scenarios) == {
        Scenario.NDR,
        Scenario.UNREGISTERED_SENDER,
        Scenario.FORWARDING,
    }
    assert all(s.needs_certificate_connector for s in result.scenarios)


def _key(text: str) -> str | None:
    result = triage(text)
    return result.key if result is not None else None


def test_tokens_not_whole_lines() -> None:
    assert _key("ATTR36") == "attr36"
    assert _key("queue says attr35, retrying") == "wrong-region"
    assert _key("it was TenantInboundAttribution again") == "direct-send-rejected"
    assert _key("[Message=UntrustedRoot]") == "untrusted-root"
    assert _key("TLS negotiation failed with error NoCredentials") == "send-connector-certificate"
    assert _key("Slack italics: _ATTR36_ and *TenantAttribution*") == "attr36"  # the first one
    assert _key("blocked: unregistered domains") == "unregistered-domains"


def test_a_wrapped_reply_is_the_cause_and_other_statuses_are_listed_as_pasted() -> None:
    text = (
        "LED=450 4.4.317 Cannot connect to remote server "
        "[Message=451 5.7.3 STARTTLS is required to send mail]"
    )
    result = triage(text)
    assert result is not None
    assert result.key == "starttls-required"  # 4.4.317 only wraps the real reply
    assert CheckId.STARTTLS_MISSING in result.check_ids
    assert result.also == ()
    both = triage("first 550 5.7.68 TenantInboundAttribution, later 5.7.64 ... ATTR36")
    assert both is not None
    assert both.key == "direct-send-rejected"
    assert both.also == ("5.7.64 ATTR36",)


def test_bare_5_7_64_gets_the_generic_answer() -> None:
    result = triage("NDR says 550 5.7.64, nothing else")
    assert result is not None
    assert result.key == "relay-access-denied"
    assert "ATTR36" in result.meaning
    assert "TenantAttribution" in result.meaning


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello, mail is broken",
        "550 5.7.640 something",  # a longer code is another code
        "15.7.64",
        "5.7.64.1",
        "ATTR360",
        "XATTR36",
        "4.4.3170",
        "TenantAttributions",
        "250 2.6.0 Queued mail for delivery",
        "451 4.4.4 temporary failure",  # 4.4.4 alone is not ATTR36
        "454 4.7.50 other",
    ],
)
def test_unknown_text_is_none(text: str) -> None:
    assert triage(text) is None


def test_long_input_is_refused_fast_with_one_line() -> None:
    text = "5.7.64 " * MAX_INPUT_LENGTH
    started = time.perf_counter()
    with pytest.raises(TriageInputError) as caught:
        triage(text)
    assert time.perf_counter() - started < 0.05  # a length check, not a match
    assert isinstance(caught.value, RelaycheckError)
    assert "too long" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert triage("x" * (MAX_INPUT_LENGTH - 7) + " ATTR36") is not None  # exactly at the limit


def test_worst_case_text_is_fast_and_linear() -> None:
    unit = ("5.7." + "6" * 10 + " TLS 1.0 and 1.1 are " + "a" * 20)[:80]
    small = unit * (4000 // 80)  # what a slash command can carry
    started = time.perf_counter()
    for _ in range(20):
        triage(small)
    assert (time.perf_counter() - started) / 20 < 0.05
    started = time.perf_counter()
    triage(unit * (MAX_INPUT_LENGTH // 80))  # a whole megabyte: linear, no backtracking blow-up
    assert time.perf_counter() - started < 3


def test_to_json_is_plain_json_with_string_enums() -> None:
    result = triage("&lt;550 5.7.64 Relay Access Denied ATTR36&gt;")
    assert result is not None
    data = json.loads(json.dumps(result.to_json()))
    assert data["key"] == "attr36"
    assert data["code"] == "550 5.7.64 ATTR36"
    assert data["check_ids"] == ["accepted-domain", "san-coverage"]
    assert data["scenarios"] == ["ndr", "unregistered-sender", "forwarding"]
    assert data["matched"] == ["ATTR36"]
    assert set(data) == {
        "key",
        "code",
        "reply",
        "meaning",
        "causes",
        "fixes",
        "check_ids",
        "scenarios",
        "matched",
        "also",
        "note",
        "known_as",
        "class",
        "known_code",
        "message",
        "hints",
    }


def test_every_entry_recognises_its_own_reply() -> None:
    assert len(KNOWN_CODES) == len(set(KNOWN_CODES))
    for reply, _key, _checks in ROWS:
        result = triage(reply)
        assert result is not None
        again = triage(result.reply)  # the canonical wording leads back to the same entry
        assert again is not None
        assert again.key == result.key


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=MAX_INPUT_LENGTH))
def test_never_raises_for_any_text_within_the_limit(text: str) -> None:
    result = triage(text)
    assert result is None or result.matched


@settings(max_examples=100, deadline=None)
@given(st.text(), st.sampled_from([r[0] for r in ROWS]), st.text())
def test_a_reply_surrounded_by_anything_is_recognised_or_refused(
    before: str, reply: str, after: str
) -> None:
    text = f"{before} {reply} {after}"
    try:
        result = triage(text)
    except TriageInputError:
        assert len(text) > MAX_INPUT_LENGTH
        return
    assert result is not None
