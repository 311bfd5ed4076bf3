"""Name rules: Exchange Online connector semantics next to RFC 6125 host-name semantics."""

from __future__ import annotations

import re

import idna
import pytest

from checks.model import AcceptedDomain
from checks.rules.names import (
    Acceptance,
    DomainStanding,
    InvalidName,
    NameMatch,
    _normalise,
    certificate_covers_host,
    connector_covers,
    connector_domain_standing,
    display_domain,
    lookup_accepted,
    match_connector,
    parse_connector_name,
    to_ascii_domain,
)


def accepted(*names: str, match_subdomains: bool = False) -> tuple[AcceptedDomain, ...]:
    return tuple(AcceptedDomain(name=n, match_subdomains=match_subdomains) for n in names)


@pytest.mark.parametrize(
    ("connector", "name", "expected"),
    [
        ("*.contoso.com", "contoso.com", NameMatch.COVERED),
        ("*.contoso.com", "mail.contoso.com", NameMatch.COVERED),
        (
            "*.contoso.com",
            "a.b.mail.contoso.com",
            NameMatch.COVERED,
        ),  # any depth (Microsoft's wording)
        ("*.contoso.com", "MAIL.Contoso.COM", NameMatch.COVERED),
        ("*.contoso.com", "contoso.com.evil.example", NameMatch.NOT_COVERED),
        ("*.contoso.com", "notcontoso.com", NameMatch.NOT_COVERED),
        ("*.contoso.com", "*.contoso.com", NameMatch.COVERED),
        ("mail.contoso.com", "mail.contoso.com", NameMatch.COVERED),
        ("mail.contoso.com", "mail2.contoso.com", NameMatch.NOT_COVERED),
        ("mail.contoso.com", "*.contoso.com", NameMatch.UNCERTAIN),  # undocumented
        ("a.b.contoso.com", "*.contoso.com", NameMatch.NOT_COVERED),
        ("contoso.com", "mail.contoso.com", NameMatch.NOT_COVERED),
        ("*.bücher.example", "mail.xn--bcher-kva.example", NameMatch.COVERED),
    ],
)
def test_connector_semantics(connector: str, name: str, expected: NameMatch) -> None:
    assert connector_covers(parse_connector_name(connector), name) is expected


def test_embedded_wildcard_is_invalid_config() -> None:
    with pytest.raises(InvalidName, match="leading"):
        parse_connector_name("a.*.contoso.com")


def test_match_through_cn_and_san_separately() -> None:
    connector = parse_connector_name("*.contoso.com")
    both = match_connector(
        connector, common_name="mail.contoso.com", san_dns_names=["mail.contoso.com"]
    )
    assert both.fully_covered
    cn_only = match_connector(connector, common_name="mail.contoso.com", san_dns_names=[])
    assert cn_only.covered
    assert not cn_only.fully_covered
    san_only = match_connector(
        connector, common_name="Contoso Mail", san_dns_names=["mail.contoso.com"]
    )
    assert san_only.covered
    assert not san_only.fully_covered
    neither = match_connector(
        connector, common_name="mail.fabrikam.com", san_dns_names=["fabrikam.com"]
    )
    assert not neither.covered
    assert not neither.uncertain


def test_accepted_lookup_is_exact() -> None:
    domains = accepted("contoso.com")
    assert lookup_accepted("contoso.com", domains).acceptance is Acceptance.ACCEPTED
    assert lookup_accepted("sales.contoso.com", domains).acceptance is Acceptance.NOT_ACCEPTED
    with_match = accepted("contoso.com", match_subdomains=True)
    assert lookup_accepted("sales.contoso.com", with_match).acceptance is Acceptance.UNCERTAIN


@pytest.mark.parametrize(
    ("connector", "domains", "standing"),
    [
        ("*.contoso.com", ("contoso.com",), DomainStanding.ACCEPTED),
        ("contoso.com", ("contoso.com",), DomainStanding.ACCEPTED),
        ("mail.contoso.com", ("contoso.com",), DomainStanding.PARENT_ACCEPTED),
        ("mail.contoso.com", ("mail.contoso.com",), DomainStanding.ACCEPTED),
        ("host.sub.contoso.com", ("contoso.com",), DomainStanding.NOT_ACCEPTED),
        ("*.fabrikam.com", ("contoso.com",), DomainStanding.NOT_ACCEPTED),
    ],
)
def test_connector_domain_standing(
    connector: str, domains: tuple[str, ...], standing: DomainStanding
) -> None:
    assert (
        connector_domain_standing(parse_connector_name(connector), accepted(*domains)).standing
        is standing
    )


@pytest.mark.parametrize(
    ("host", "cn", "sans", "expected"),
    [
        ("mail.contoso.com", None, ["mail.contoso.com"], True),
        ("mail.contoso.com", None, ["*.contoso.com"], True),
        ("a.mail.contoso.com", None, ["*.contoso.com"], False),  # one label only
        ("contoso.com", None, ["*.contoso.com"], False),
        ("mail.contoso.com", "mail.contoso.com", [], True),  # CN only when no SAN
        ("mail.contoso.com", "mail.contoso.com", ["other.contoso.com"], False),  # SAN wins
        ("mail.contoso.com", None, ["m*.contoso.com"], False),  # no partial wildcards
        ("x.com", None, ["*.com"], False),
    ],
)
def test_rfc6125_host_coverage(host: str, cn: str | None, sans: list[str], expected: bool) -> None:
    assert certificate_covers_host(host, common_name=cn, san_dns_names=sans) is expected


@pytest.mark.parametrize(
    "bad", ["", ".", "a..b", "-a.com", "a b.com", "xn--zz.com", "a" * 64 + ".com"]
)
def test_invalid_domains(bad: str) -> None:
    with pytest.raises(InvalidName):
        to_ascii_domain(bad)


@pytest.mark.parametrize(
    "name",
    [
        "contoso.com",
        "mail-1.contoso.co.jp",
        "_dmarc.contoso.com",
        "xn--bcher-kva.example",
        "Contoso.COM",
        "XN--BCHER-KVA.example",
        "-bad.example",
        "a..b",
        "bücher.example",
        "x" * 64 + ".example",
    ],
)
def test_fast_paths_answer_like_the_idna_codec(name: str) -> None:
    """Plain names skip IDNA; the answers (and the errors) must be those of the long way."""
    try:
        expected_display = str(idna.decode(name))
    except (idna.IDNAError, UnicodeError):
        expected_display = name
    assert display_domain(name) == expected_display
    try:
        expected: str | None = _normalise(name)
    except InvalidName as err:
        expected = None
        with pytest.raises(InvalidName, match=re.escape(str(err))):
            to_ascii_domain(name)
    if expected is not None:
        assert to_ascii_domain(name) == expected
