"""Domain-name rules: normalisation, accepted-domain lookup, connector and host-name matching.

Two matching semantics live here on purpose, side by side, because confusing them is the bug:

* Exchange Online's connector semantics (`TlsSenderCertificateName`): `*.contoso.com` means
  "contoso.com and all its subdomains", at any depth (Microsoft's wording).
* RFC 6125/9525 host-name semantics, for "does this certificate cover host X" (MX hosts, our own
  listeners): a wildcard is the whole left-most label and matches exactly one label; SAN
  dNSNames win over the CN when any are present.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

import idna

from checks.model import AcceptedDomain

MAX_DOMAIN_LENGTH = 253
# distinct names remembered by `to_ascii_domain` and `display_domain`
NAME_CACHE_SIZE = 4096


class InvalidName(ValueError):
    """A domain name that is not a valid DNS/IDNA name (message says why)."""


# a plain lower-case LDH name (no A-labels): valid as it stands, no IDNA work needed
_PLAIN_NAME = re.compile(r"(?:(?!-)[a-z0-9_-]{1,63}(?<!-)\.)*(?!-)[a-z0-9_-]{1,63}(?<!-)")


@lru_cache(maxsize=NAME_CACHE_SIZE)
def to_ascii_domain(name: str) -> str:
    """The lower-case A-label form of `name`, so Unicode and punycode spellings compare equal.

    Accepts a trailing dot (absolute names from DNS). Raises `InvalidName` with a reason.
    Memoised (a pure function of the text; a scan and a batch of explanations ask about the
    same few names thousands of times), and plain lower-case names skip the IDNA codec.
    """
    if len(name) <= MAX_DOMAIN_LENGTH and _PLAIN_NAME.fullmatch(name) and "xn--" not in name:
        return name
    return _normalise(name)


def _normalise(name: str) -> str:
    """`to_ascii_domain` the long way: validation and the IDNA codec."""
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidName("empty domain name")
    if len(text) > MAX_DOMAIN_LENGTH * 4:
        raise InvalidName("domain name is too long")
    if any(ch.isspace() for ch in text):
        raise InvalidName("domain name contains white space")
    try:
        if text.isascii():
            lowered = text.lower()
            # Validate A-labels by decoding them; plain LDH labels pass through.
            labels = lowered.split(".")
            for label in labels:
                _check_ascii_label(label)
            if any(label.startswith("xn--") for label in labels):
                idna.decode(lowered)
            ascii_name = lowered
        else:
            ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except idna.IDNAError as err:
        raise InvalidName(f"not a valid internationalised domain name ({err})") from None
    except UnicodeError as err:
        raise InvalidName(f"not a valid domain name ({err})") from None
    if len(ascii_name) > MAX_DOMAIN_LENGTH:
        raise InvalidName("domain name is longer than 253 characters")
    return ascii_name


def _check_ascii_label(label: str) -> None:
    if not label:
        raise InvalidName("empty label (two dots in a row, or a leading dot)")
    if len(label) > 63:
        raise InvalidName("a label is longer than 63 characters")
    if label.startswith("-") or label.endswith("-"):
        raise InvalidName(f"label {label!r} starts or ends with a hyphen")
    for ch in label:
        if not (ch.isalnum() or ch in "-_"):
            raise InvalidName(f"character {ch!r} is not allowed in a domain name")


@lru_cache(maxsize=NAME_CACHE_SIZE)
def display_domain(ascii_name: str) -> str:
    """The Unicode form for people; falls back to the A-label when it does not decode.

    Only a name with an A-label (`xn--`) has another form: the others are returned as they
    are, without IDNA decoding (which was more than half of an explanation's time); what
    decoding would change about them (upper case) still goes through it."""
    lowered = ascii_name.lower()
    if "xn--" not in lowered and lowered == ascii_name:
        return ascii_name
    try:
        return str(idna.decode(ascii_name))
    except (idna.IDNAError, UnicodeError):
        return ascii_name


# --------------------------------------------------------------------------- accepted domains


class Acceptance(StrEnum):
    """Whether a domain is an accepted domain of the tenant."""

    ACCEPTED = "accepted"
    # only through MatchSubDomains of a parent: undocumented for relay, reported as uncertain
    UNCERTAIN = "uncertain"
    NOT_ACCEPTED = "not-accepted"


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedLookup:
    acceptance: Acceptance
    domain: str
    via: AcceptedDomain | None = None


def lookup_accepted(domain: str, accepted: Iterable[AcceptedDomain]) -> AcceptedLookup:
    """Exact, case-insensitive, IDNA-normalised lookup (`domain` must already be A-label form).

    Subdomains are never implied; a parent with MatchSubDomains makes the answer uncertain.
    """
    parent_with_match: AcceptedDomain | None = None
    for entry in accepted:
        if entry.name == domain:
            return AcceptedLookup(acceptance=Acceptance.ACCEPTED, domain=domain, via=entry)
        if entry.match_subdomains and domain.endswith("." + entry.name):
            parent_with_match = entry
    if parent_with_match is not None:
        return AcceptedLookup(acceptance=Acceptance.UNCERTAIN, domain=domain, via=parent_with_match)
    return AcceptedLookup(acceptance=Acceptance.NOT_ACCEPTED, domain=domain)


# --------------------------------------------------------------------------- connector names


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorName:
    """A parsed `TlsSenderCertificateName`: `*.contoso.com` is domain contoso.com, wildcard."""

    domain: str
    wildcard: bool

    def __str__(self) -> str:
        return f"*.{self.domain}" if self.wildcard else self.domain


def parse_connector_name(value: str) -> ConnectorName:
    """Parse a connector's certificate name; embedded wildcards are invalid per the cmdlet docs."""
    text = value.strip()
    wildcard = text.startswith("*.")
    rest = text[2:] if wildcard else text
    if "*" in rest:
        raise InvalidName(
            "a wildcard is only allowed as a leading '*.' (e.g. '*.contoso.com'), "
            "not embedded in the name"
        )
    return ConnectorName(domain=to_ascii_domain(rest), wildcard=wildcard)


class NameMatch(StrEnum):
    """How a certificate name relates to a connector's `TlsSenderCertificateName`."""

    COVERED = "covered"
    # a wildcard certificate name against a specific connector name: undocumented
    UNCERTAIN = "uncertain"
    NOT_COVERED = "not-covered"


def connector_covers(connector: ConnectorName, cert_name: str) -> NameMatch:
    """Exchange Online semantics: `*.X` covers X and every subdomain of X; else exact."""
    try:
        presented_wildcard = cert_name.strip().startswith("*.")
        base = to_ascii_domain(cert_name.strip()[2:] if presented_wildcard else cert_name)
    except InvalidName:
        return NameMatch.NOT_COVERED
    under = base == connector.domain or base.endswith("." + connector.domain)
    if presented_wildcard:
        if connector.wildcard and under:
            return NameMatch.COVERED
        # `*.contoso.com` presented, connector `mail.contoso.com`: Microsoft says nothing.
        if not connector.wildcard and (
            connector.domain.endswith("." + base)
            and connector.domain.count(".") == base.count(".") + 1
        ):
            return NameMatch.UNCERTAIN
        return NameMatch.NOT_COVERED
    if connector.wildcard:
        return NameMatch.COVERED if under else NameMatch.NOT_COVERED
    return NameMatch.COVERED if base == connector.domain else NameMatch.NOT_COVERED


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorMatch:
    """How a certificate's CN and SAN dNSNames relate to a connector's name.

    Sources disagree on whether Exchange Online reads the CN or the SAN, so a match that holds
    through only one of them is reported as a warning rather than as OK.
    """

    via_cn: NameMatch
    via_san: NameMatch
    matching_names: tuple[str, ...]

    @property
    def covered(self) -> bool:
        """Covered through at least one of CN or SAN (possibly with a warning)."""
        return NameMatch.COVERED in (self.via_cn, self.via_san)

    @property
    def fully_covered(self) -> bool:
        return self.via_cn is NameMatch.COVERED and self.via_san is NameMatch.COVERED

    @property
    def uncertain(self) -> bool:
        return not self.covered and NameMatch.UNCERTAIN in (self.via_cn, self.via_san)


def _best(matches: Iterable[NameMatch]) -> NameMatch:
    found = set(matches)
    for candidate in (NameMatch.COVERED, NameMatch.UNCERTAIN):
        if candidate in found:
            return candidate
    return NameMatch.NOT_COVERED


def match_connector(
    connector: ConnectorName, *, common_name: str | None, san_dns_names: Sequence[str]
) -> ConnectorMatch:
    cn_match = connector_covers(connector, common_name) if common_name else NameMatch.NOT_COVERED
    san_matches = [connector_covers(connector, name) for name in san_dns_names]
    names = [
        n for n, m in zip(san_dns_names, san_matches, strict=True) if m is not NameMatch.NOT_COVERED
    ]
    if common_name and cn_match is not NameMatch.NOT_COVERED and common_name not in names:
        names.insert(0, common_name)
    return ConnectorMatch(via_cn=cn_match, via_san=_best(san_matches), matching_names=tuple(names))


class DomainStanding(StrEnum):
    """Whether a connector's certificate domain counts as the tenant's for relay."""

    ACCEPTED = "accepted"
    # e.g. connector `mail.contoso.com` with only `contoso.com` accepted: undocumented
    PARENT_ACCEPTED = "parent-accepted"
    UNCERTAIN = "uncertain"
    NOT_ACCEPTED = "not-accepted"

    @property
    def attributes_relay(self) -> bool:
        """Does the certificate domain count as the tenant's? (For the undocumented standings,
        relaycheck assumes it does and warns; explain and the scan must agree on this.)"""
        return self is not DomainStanding.NOT_ACCEPTED

    @property
    def documented(self) -> bool:
        return self is DomainStanding.ACCEPTED


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorDomain:
    standing: DomainStanding
    domain: str
    accepted_as: str | None = None


def connector_domain_standing(
    connector: ConnectorName, accepted: Sequence[AcceptedDomain]
) -> ConnectorDomain:
    """Is the connector's domain (its name without `*.`) an accepted domain?"""
    direct = lookup_accepted(connector.domain, accepted)
    if direct.acceptance is Acceptance.ACCEPTED:
        return ConnectorDomain(
            standing=DomainStanding.ACCEPTED, domain=connector.domain, accepted_as=connector.domain
        )
    if not connector.wildcard and "." in connector.domain:
        parent = connector.domain.split(".", 1)[1]
        if lookup_accepted(parent, accepted).acceptance is Acceptance.ACCEPTED:
            return ConnectorDomain(
                standing=DomainStanding.PARENT_ACCEPTED, domain=connector.domain, accepted_as=parent
            )
    if direct.acceptance is Acceptance.UNCERTAIN:
        via = direct.via.name if direct.via else None
        return ConnectorDomain(
            standing=DomainStanding.UNCERTAIN, domain=connector.domain, accepted_as=via
        )
    return ConnectorDomain(standing=DomainStanding.NOT_ACCEPTED, domain=connector.domain)


# --------------------------------------------------------------------------- RFC 6125 host names


def rfc6125_name_matches(pattern: str, host: str) -> bool:
    """One presented DNS-ID against one reference host name (both already A-label, lower)."""
    if pattern == host:
        return True
    if not pattern.startswith("*."):
        return False
    suffix = pattern[2:]
    if "*" in suffix or suffix.count(".") < 1:
        # `*.com` and embedded wildcards never match
        return False
    head, sep, rest = host.partition(".")
    return bool(sep) and bool(head) and rest == suffix and not head.startswith("xn--")


def certificate_covers_host(
    host: str, *, common_name: str | None, san_dns_names: Sequence[str]
) -> bool:
    """RFC 6125/9525: SAN dNSNames when present, else the CN; wildcard = one left-most label."""
    try:
        reference = to_ascii_domain(host)
    except InvalidName:
        return False
    presented = list(san_dns_names) if san_dns_names else ([common_name] if common_name else [])
    for name in presented:
        wildcard = name.startswith("*.")
        try:
            normal = ("*." if wildcard else "") + to_ascii_domain(name[2:] if wildcard else name)
        except InvalidName:
            continue
        if rfc6125_name_matches(normal, reference):
            return True
    return False
