"""Languages: which one a message is written in, and the gettext catalogues that hold them.

Why a context variable and not a process-wide setting: the Slack bot answers several people at
once, each in their own locale, while channel alerts use `[locale] language`. Each entry point
(a CLI run, one Slack request, one scheduled cycle) says `with using(language):` around its
work, and every renderer below it calls `_()`; asyncio gives every task its own copy of the
context, so an answer in Japanese for one user never switches another user's answer.

The messages are English msgids in the source, extracted with Babel (`babel.cfg`, see
`scripts/catalogues.sh`) into `checks/locale/relaycheck.pot`; translations live in
`checks/locale/<lang>/LC_MESSAGES/relaycheck.po`, compiled to `.mo` beside them and read at
run time by the standard library's `gettext`. English needs no catalogue: a msgid is its own
English text. Dates go through Babel (`2026年12月1日` in Japanese, ISO 8601 in English as before).
"""

from __future__ import annotations

import gettext as _gettext
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path

from checks.errors import RelaycheckError

DOMAIN = "relaycheck"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


class Language(StrEnum):
    """The languages relaycheck writes; the value is the gettext/Babel locale name."""

    EN = "en"
    JA = "ja"


DEFAULT_LANGUAGE = Language.EN


class LanguageError(RelaycheckError):
    """A language name that relaycheck does not speak (`--lang`, `[locale] language`)."""


def parse_language(text: str) -> Language:
    """`"ja"`, `"JA"`, `"ja_JP.UTF-8"` or `"ja-JP"` -> Language.JA; unknown names are errors."""
    found = language_of_locale(text)
    if found is None:
        choices = ", ".join(repr(lang.value) for lang in Language)
        raise LanguageError(f"{text!r} is not a language relaycheck speaks ({choices})")
    return found


def language_of_locale(text: str | None) -> Language | None:
    """A POSIX (`ja_JP.UTF-8`) or Slack (`ja-JP`) locale name's language, or None."""
    if not text:
        return None
    head = text.strip().replace("-", "_").split("_", 1)[0].split(".", 1)[0].lower()
    return next((lang for lang in Language if lang.value == head), None)


def language_from_environ(environ: Mapping[str, str]) -> Language:
    """The CLI's language from the environment: the first of LC_ALL, LC_MESSAGES, LANG that is set
    decides (POSIX precedence), Japanese when it starts with `ja`, English otherwise."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return Language.JA if value.lower().startswith("ja") else Language.EN
    return DEFAULT_LANGUAGE


@cache
def translations(language: Language) -> _gettext.NullTranslations:
    """The compiled catalogue of `language` (English: the msgids themselves)."""
    if language is Language.EN:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language.value])


_current: ContextVar[Language] = ContextVar("relaycheck_language", default=DEFAULT_LANGUAGE)


def current() -> Language:
    """The language of the messages being written in this context."""
    return _current.get()


@contextmanager
def using(language: Language) -> Iterator[Language]:
    """Write every message inside the block in `language`; restores the previous one after."""
    token = _current.set(language)
    try:
        yield language
    finally:
        _current.reset(token)


def set_language(language: Language) -> None:
    """Switch the current context's language until the enclosing `using()` block ends (the CLI
    learns `[locale] language` only after it has read the config)."""
    _current.set(language)


def _(message: str) -> str:
    """`message` (an English msgid) in the current language."""
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a message that fits the count `n`, in the current language."""
    return translations(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a message for extraction without translating it yet (module-level tables)."""
    return message


def format_day(moment: date | datetime) -> str:
    """A calendar day for people: `2026年12月1日` in Japanese, `2026-12-01` in English."""
    day = moment.date() if isinstance(moment, datetime) else moment
    if _current.get() is Language.EN:
        return day.isoformat()
    # Babel's date tables load on the first date shown, not with every command (~12 ms)
    from babel.dates import format_date

    return str(format_date(day, format="long", locale=_current.get().value))


def format_moment(moment: datetime) -> str:
    """A UTC time for people: `2026年12月1日 09:00 UTC` / `2026-12-01 09:00 UTC`."""
    return f"{format_day(moment)} {moment:%H:%M} UTC"
