"""Fuzzing the parsers that take hostile input (issue 15): the pair parser, triage input, the
export loader, the `/relaycheck cert` target and the SSRF rule.

The property each time: the only exception that may escape is relaycheck's own error, and its
message is one line (the CLI prints it as is; Slack shows it in one section).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.listeners.commands import TargetError, split_target
from checks.errors import AddressError, ExportError, RelaycheckError
from checks.rules.addresses import parse_pair
from checks.rules.replies import TriageInputError, triage
from checks.rules.targets import refusal
from checks.rules.tenant import parse_accepted_domains, parse_inbound_connectors

HOSTILE = st.sampled_from(
    [
        "\x1b[2K\r\x1b[32mOK",
        "\u202e",
        "\u200b",
        "\ufeff",
        "\x00",
        "<mailto:a@b.com|a@b.com>",
        "-&gt;",
        "→",
        " to ",
        " via ",
        "<>",
        "@",
        "xn--",
        "ß",
        "\ud800",
        "%",
        "9" * 30,
        "[" * 50,
        "550 5.7.64 ",
        "ATTR36",
        "TenantAttribution",
        "4.4.317",
    ]
)
PIECES = st.lists(st.one_of(HOSTILE, st.text(max_size=20)), max_size=12).map("".join)


def one_line(err: RelaycheckError) -> None:
    text = str(err)
    assert text
    assert "\n" not in text
    assert "\r" not in text


@settings(max_examples=300, deadline=None)
@given(PIECES, st.one_of(st.none(), PIECES))
def test_pair_parser_raises_only_its_own_one_line_error(text: str, via: str | None) -> None:
    try:
        parse_pair(text, via=via)
    except AddressError as err:
        one_line(err)


@settings(max_examples=300, deadline=None)
@given(st.one_of(PIECES, st.text(min_size=5000, max_size=20000)))
def test_triage_input_raises_only_its_own_one_line_error(text: str) -> None:
    try:
        result = triage(text)
    except TriageInputError as err:
        one_line(err)
    else:
        assert result is None or result.matched


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | PIECES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "Name",
                    "DomainName",
                    "DomainType",
                    "ConnectorType",
                    "TlsSenderCertificateName",
                    "SenderIPAddresses",
                    "Enabled",
                    "AssociatedAcceptedDomains",
                    "value",
                    "Domain",
                    "x",
                ]
            ),
            children,
            max_size=6,
        )
    ),
    max_leaves=20,
)


def _encodings(document: Any) -> st.SearchStrategy[bytes]:
    text = json.dumps(document, allow_nan=True)
    return st.sampled_from(
        [
            text.encode("utf-8"),
            b"\xef\xbb\xbf" + text.encode("utf-8"),
            text.encode("utf-16"),
            text.encode("utf-16-le"),
            text.encode("utf-8")[: max(len(text) // 2, 1)],  # cut short
        ]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON.flatmap(_encodings))
def test_export_loader_raises_only_its_own_one_line_error(data: bytes) -> None:
    for parse in (parse_accepted_domains, parse_inbound_connectors):
        try:
            parse(data, "export.json")
        except ExportError as err:
            one_line(err)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=1, max_value=200_000),
    st.sampled_from([b"[", b'{"a":', b"-", b"9"]),
    st.binary(max_size=64),
)
def test_export_loader_survives_depth_size_and_noise(depth: int, unit: bytes, noise: bytes) -> None:
    for data in (unit * depth, noise, unit * min(depth, 50) + noise):
        for parse in (parse_accepted_domains, parse_inbound_connectors):
            try:
                parse(data, "export.json")
            except ExportError as err:
                one_line(err)


@settings(max_examples=300, deadline=None)
@given(PIECES)
def test_cert_target_parser_raises_only_its_own_error(text: str) -> None:
    try:
        host, port = split_target(text)
    except TargetError as err:
        one_line(err)
    else:
        assert 0 < port < 65536
        assert host


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_ssrf_rule_judges_every_ipv6_address_and_embedded_ipv4_consistently(value: int) -> None:
    address = ipaddress.IPv6Address(value)
    verdict = refusal(str(address))
    if address.ipv4_mapped is not None:
        assert (verdict is None) == (refusal(str(address.ipv4_mapped)) is None)
    if address.sixtofour is not None and refusal(str(address.sixtofour)) is not None:
        assert verdict is not None
    if not address.is_global and address.teredo is None:
        # stricter than ipaddress, never looser (Teredo is judged by the client it embeds)
        assert verdict is not None


@settings(max_examples=300, deadline=None)
@given(PIECES)
def test_ssrf_rule_never_raises_on_text(text: str) -> None:
    assert refusal(text) is None or isinstance(refusal(text), str)
