"""Parsing what people type as a sender/recipient pair into an SMTP envelope.

The input comes from a terminal or a Slack slash command, so it arrives in many spellings:
`a -> b`, `a → b`, `a to b`, `<a> -> <b>`, Slack's `<mailto:a|a>` links and `-&gt;` (Slack
escapes `&`, `<`, `>` in command text), the null sender `<>`, upper case, IDN in Unicode or
punycode, and an optional `via MAILBOX` naming the on-prem mailbox that forwarded the message.
Every failure is an `AddressError` naming the offending part; nothing else escapes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from checks.errors import AddressError
from checks.rules.names import InvalidName, display_domain, to_ascii_domain

MAX_INPUT_LENGTH = 1000
MAX_LOCAL_PART = 64
MAX_ADDRESS = 254

_SLACK_MAILTO = re.compile(r"<mailto:([^|>]*)(?:\|[^>]*)?>", re.IGNORECASE)
_VIA = re.compile(r"(?:^|\s)(?:--via[\s=]+|via\s+)(\S+)\s*$", re.IGNORECASE)
_SEPARATORS = re.compile(r"\s*(?:->|→|⟶|=>)\s*|\s+to\s+", re.IGNORECASE)
# control characters other than tab and line ends (one regex, not a loop over characters)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# only text made of these can be an IP address literal: others skip `ipaddress`
_IP_LIKE = re.compile(r"[0-9A-Fa-f.:%]+")
# RFC 5321 atext, plus any non-ASCII character (SMTPUTF8 local parts), written as what it is
# not: the ASCII specials, controls, space and DEL. The same set as
# [A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010FFFF], whose range to U+10FFFF took ~4 ms of every
# start-up to compile.
_ATEXT = re.compile(r'^[^\x00-\x20"(),.:;<>@\[\\\]\x7f]+$')


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """An envelope address with its domain in lower-case A-label form."""

    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def display(self) -> str:
        """The address as a person writes it (Unicode domain)."""
        return f"{self.local}@{display_domain(self.domain)}"

    def same_mailbox(self, other: Address) -> bool:
        return self.domain == other.domain and self.local.lower() == other.local.lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """P1 MAIL FROM (None for the null sender `<>`), RCPT TO, and an optional forwarding mailbox."""

    sender: Address | None
    recipient: Address
    via: Address | None = None


def _unescape_slack(text: str) -> str:
    # Slack escapes exactly these three; `&amp;` last so `&amp;gt;` stays `&gt;` literally.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_address(text: str, *, role: str = "address") -> Address:
    """One address, as typed: bare, in angle brackets, or as a Slack mailto link."""
    raw = text.strip()
    if raw.lower().startswith("mailto:"):
        raw = raw[len("mailto:") :]
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1].strip()
        if raw.lower().startswith("mailto:"):
            raw = raw[len("mailto:") :]
    if not raw:
        raise AddressError(f"the {role} is empty", part=text)
    if len(raw) > MAX_ADDRESS:
        raise AddressError(f"the {role} is longer than {MAX_ADDRESS} characters", part=raw)
    if "@" not in raw:
        raise AddressError(f"the {role} has no '@'", part=raw)
    local, _, domain = raw.rpartition("@")
    if not local:
        raise AddressError(f"the {role} has nothing before '@'", part=raw)
    if not domain:
        raise AddressError(f"the {role} has no domain after '@'", part=raw)
    if domain.startswith("[") or _is_ip(domain):
        raise AddressError(f"the {role} uses an address literal; give a domain name", part=raw)
    _check_local_part(local, role=role, whole=raw)
    try:
        ascii_domain = to_ascii_domain(domain)
    except InvalidName as err:
        raise AddressError(f"the {role}'s domain is not valid ({err})", part=domain) from None
    if "." not in ascii_domain:
        raise AddressError(f"the {role}'s domain has no dot; give a full domain", part=domain)
    return Address(local=local, domain=ascii_domain)


def _is_ip(text: str) -> bool:
    if not _IP_LIKE.fullmatch(text):
        return False  # a name (most domains): no exception raised and caught per address
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_local_part(local: str, *, role: str, whole: str) -> None:
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        raise AddressError(
            f"the {role}'s local part is longer than {MAX_LOCAL_PART} bytes", part=whole
        )
    if local.startswith('"') and local.endswith('"') and len(local) >= 2:
        inner = local[1:-1]
        if any(ord(ch) < 32 or ch == "\x7f" for ch in inner):
            raise AddressError(f"the {role}'s quoted local part has control characters", part=whole)
        return
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise AddressError(f"the {role}'s local part has a misplaced dot", part=whole)
    for atom in local.split("."):
        if not _ATEXT.match(atom):
            raise AddressError(
                f"the {role}'s local part has characters SMTP does not allow", part=whole
            )


def _is_null_sender(text: str) -> bool:
    return text.replace(" ", "").strip() == "<>"


def parse_pair(text: str, *, via: str | None = None) -> Envelope:
    """Parse `SENDER -> RECIPIENT [via MAILBOX]`; `via` from a CLI flag overrides the text's."""
    if len(text) > MAX_INPUT_LENGTH:
        raise AddressError(
            f"the input is too long ({len(text)} characters; at most {MAX_INPUT_LENGTH})"
        )
    if _CONTROL.search(text):
        raise AddressError("the input contains control characters")
    cleaned = _SLACK_MAILTO.sub(lambda m: m.group(1), _unescape_slack(text)).strip()
    if not cleaned:
        raise AddressError("no sender and recipient given; expected 'SENDER -> RECIPIENT'")

    via_match = _VIA.search(cleaned)
    via_text = via
    if via_match:
        if via is None:
            via_text = via_match.group(1)
        cleaned = cleaned[: via_match.start()].strip()

    parts = _SEPARATORS.split(cleaned)
    if len(parts) == 1:
        raise AddressError(
            "expected 'SENDER -> RECIPIENT' (or 'SENDER to RECIPIENT'); no separator found",
            part=cleaned,
        )
    if len(parts) > 2:
        raise AddressError("more than one '->' separator; give exactly one pair", part=cleaned)
    sender_text, recipient_text = parts
    if not sender_text.strip():
        raise AddressError("the sender is missing before the separator (use <> for a bounce)")
    if not recipient_text.strip():
        raise AddressError("the recipient is missing after the separator", part=cleaned)
    sender = None if _is_null_sender(sender_text) else parse_address(sender_text, role="sender")
    if _is_null_sender(recipient_text):
        raise AddressError("the recipient cannot be the null address <>", part=recipient_text)
    recipient = parse_address(recipient_text, role="recipient")
    via_address = parse_address(via_text, role="via mailbox") if via_text is not None else None
    return Envelope(sender=sender, recipient=recipient, via=via_address)
