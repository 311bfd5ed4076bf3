"""The pair parser: every spelling people and Slack produce, and refusals that name the bad part."""

from __future__ import annotations

import contextlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.errors import AddressError
from checks.rules.addresses import MAX_INPUT_LENGTH, parse_address, parse_pair


def _pair(text: str, via: str | None = None) -> tuple[str, str, str | None]:
    envelope = parse_pair(text, via=via)
    sender = str(envelope.sender) if envelope.sender else "<>"
    return sender, str(envelope.recipient), str(envelope.via) if envelope.via else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kate@contoso.com -> kate@tailspintoys.com",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        (
            "kate@contoso.com→kate@tailspintoys.com",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        (
            "kate@contoso.com → kate@tailspintoys.com",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        (
            "kate@contoso.com to kate@tailspintoys.com",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        (
            "kate@contoso.com TO kate@tailspintoys.com",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        (
            "<kate@contoso.com> -> <kate@tailspintoys.com>",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        (
            "<mailto:kate@contoso.com|kate@contoso.com> -&gt; <mailto:kate@tailspintoys.com|kate@tailspintoys.com>",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        (
            "kate@contoso.com -&gt; kate@tailspintoys.com",
            ("kate@contoso.com", "kate@tailspintoys.com", None),
        ),
        ("&lt;&gt; -&gt; john@fabrikam.com", ("<>", "john@fabrikam.com", None)),
        ("<> -> john@fabrikam.com", ("<>", "john@fabrikam.com", None)),
        ("< > -> john@fabrikam.com", ("<>", "john@fabrikam.com", None)),
        (
            "KATE@CONTOSO.COM -> Kate@TailspinToys.com",
            ("KATE@contoso.com", "Kate@tailspintoys.com", None),
        ),
        (
            "taro@例え.jp -> kate@tailspintoys.com",
            ("taro@xn--r8jz45g.jp", "kate@tailspintoys.com", None),
        ),
        (
            "taro@xn--r8jz45g.jp -> kate@tailspintoys.com",
            ("taro@xn--r8jz45g.jp", "kate@tailspintoys.com", None),
        ),
        (
            "taro@XN--R8JZ45G.JP -> kate@tailspintoys.com",
            ("taro@xn--r8jz45g.jp", "kate@tailspintoys.com", None),
        ),
        (
            "john@fabrikam.com -> kate@tailspintoys.com via kate@contoso.com",
            ("john@fabrikam.com", "kate@tailspintoys.com", "kate@contoso.com"),
        ),
        (
            "john@fabrikam.com -> kate@tailspintoys.com --via kate@contoso.com",
            ("john@fabrikam.com", "kate@tailspintoys.com", "kate@contoso.com"),
        ),
        (
            "john@fabrikam.com -> kate@tailspintoys.com via <mailto:kate@contoso.com|kate@contoso.com>",
            ("john@fabrikam.com", "kate@tailspintoys.com", "kate@contoso.com"),
        ),
        (
            '"john smith"@fabrikam.com -> kate@tailspintoys.com',
            ('"john smith"@fabrikam.com', "kate@tailspintoys.com", None),
        ),
        (
            "mailto:john@fabrikam.com -> kate@tailspintoys.com.",
            ("john@fabrikam.com", "kate@tailspintoys.com", None),
        ),
        (
            "  john@fabrikam.com   ->   kate@tailspintoys.com  ",
            ("john@fabrikam.com", "kate@tailspintoys.com", None),
        ),
    ],
)
def test_input_forms(text: str, expected: tuple[str, str, str | None]) -> None:
    assert _pair(text) == expected


def test_via_flag_overrides_text() -> None:
    assert (
        _pair("john@fabrikam.com -> kate@tailspintoys.com", via="kate@contoso.com")[2]
        == "kate@contoso.com"
    )


def test_unicode_domain_displays_as_unicode() -> None:
    envelope = parse_pair("taro@例え.jp -> kate@tailspintoys.com")
    assert envelope.sender is not None
    assert envelope.sender.display == "taro@例え.jp"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", "no sender and recipient"),
        ("   ", "no sender and recipient"),
        ("kate@contoso.com", "no separator"),
        ("kate@contoso.com kate@tailspintoys.com", "no separator"),
        ("a@b.com -> c@d.com -> e@f.com", "more than one"),
        ("kate -> kate@tailspintoys.com", "sender has no '@'"),
        ("kate@contoso.com -> tailspintoys.com", "recipient has no '@'"),
        ("@contoso.com -> kate@tailspintoys.com", "nothing before '@'"),
        ("kate@ -> kate@tailspintoys.com", "no domain after '@'"),
        ("kate@contoso..com -> kate@tailspintoys.com", "domain is not valid"),
        ("kate@contoso -> kate@tailspintoys.com", "has no dot"),
        ("kate@[192.0.2.1] -> kate@tailspintoys.com", "address literal"),
        ("kate@contoso.com -> kate@127.0.0.1", "address literal"),
        ("kate@contoso.com -> <>", "cannot be the null address"),
        (" -> kate@tailspintoys.com", "sender is missing"),
        ("kate@contoso.com -> ", "recipient is missing"),
        ("ka te@contoso.com -> kate@tailspintoys.com", "characters SMTP does not allow"),
        ("kate.@contoso.com -> kate@tailspintoys.com", "misplaced dot"),
        ("kate@con_toso .com -> kate@tailspintoys.com", "domain is not valid"),
        ("kate@-contoso.com -> kate@tailspintoys.com", "hyphen"),
        ("kate@contoso.com -> kate@tailspintoys.com via nobody", "via mailbox has no '@'"),
        ("kate@contoso.com\x00 -> kate@tailspintoys.com", "control characters"),
        ("x" * 65 + "@contoso.com -> kate@tailspintoys.com", "longer than 64"),
        ("kate@" + "a" * 64 + ".com -> kate@tailspintoys.com", "domain is not valid"),
    ],
)
def test_bad_inputs_name_the_problem(text: str, names: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_pair(text)
    message = str(caught.value)
    assert names in message
    assert "\n" not in message


def test_long_input_is_refused_fast() -> None:
    text = "a@b.com -> " + "x" * 5_000_000 + "@d.com"
    started = time.perf_counter()
    with pytest.raises(AddressError, match="too long"):
        parse_pair(text)
    assert time.perf_counter() - started < 0.05
    with pytest.raises(AddressError, match="too long"):
        parse_pair("a" * (MAX_INPUT_LENGTH + 1))


def test_error_shows_a_clipped_part() -> None:
    with pytest.raises(AddressError) as caught:
        parse_address("y" * 200)
    assert len(str(caught.value)) < 150


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_parser_raises_only_its_own_error(text: str) -> None:
    with contextlib.suppress(AddressError):
        parse_pair(text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a@b.com",
                "<>",
                "->",
                "→",
                " to ",
                "via",
                "&gt;",
                "<mailto:",
                "|",
                ">",
                "<",
                "@",
                ".",
                "例",
                "xn--",
                " ",
            ]
        ),
        max_size=12,
    ).map("".join)
)
def test_parser_raises_only_its_own_error_on_near_misses(text: str) -> None:
    with contextlib.suppress(AddressError):
        parse_pair(text)


RFC5321_ATEXT = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)


@pytest.mark.parametrize("code", range(0x80))
def test_local_part_characters_are_rfc5321_atext(code: int) -> None:
    """The atext pattern is written as its complement (cheap to compile): every ASCII character
    is still accepted exactly when RFC 5321 lists it (the dot is judged as a separator)."""
    char = chr(code)
    if char == ".":
        return
    try:
        parse_address(f"a{char}b@contoso.com")
        accepted = True
    except AddressError:
        accepted = False
    assert accepted is (char in RFC5321_ATEXT), repr(char)


@pytest.mark.parametrize("char", ["é", "ü", "日", "\u00ff", "\U0001f4e7"])
def test_non_ascii_local_parts_pass_the_atext_check(char: str) -> None:
    assert parse_address(f"a{char}b@contoso.com").local == f"a{char}b"
