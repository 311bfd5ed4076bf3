"""The gettext catalogues: every message in the source is translated, and what ships is current.

The messages are extracted here exactly as `scripts/catalogues.sh` extracts them (Babel, the
same keywords and mapping file), so a message added without a translation fails this test
before a Japanese user sees English in the middle of an answer.
"""

from __future__ import annotations

import fnmatch
import gettext
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from checks.i18n import DOMAIN, LOCALE_DIR, Language

REPO = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"\{[a-z_]*\}")
TRANSLATED = [lang for lang in Language if lang is not Language.EN]


def extracted() -> dict[str | tuple[str, ...], list[str]]:
    """msgid -> where it is used, for every message of checks/ and bot/."""
    found: dict[str | tuple[str, ...], list[str]] = {}
    for folder in ("checks", "bot"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
            REPO / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            key = message if isinstance(message, str) else tuple(message)
            found.setdefault(key, []).append(f"{folder}/{filename}:{lineno}")
    return found


def catalogue_problems(
    messages: Mapping[str | tuple[str, ...], Iterable[str]], catalog: Catalog
) -> list[str]:
    """Everything wrong with `catalog` for these messages: missing, untranslated, fuzzy, or a
    translation whose {placeholders} differ from the msgid's (format() would raise)."""
    problems = []
    for key, where in messages.items():
        msgid = key if isinstance(key, str) else key[0]
        entry = catalog.get(msgid)
        place = ", ".join(where)
        if entry is None:
            problems.append(f"missing: {msgid!r} ({place})")
            continue
        strings = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        if not all(strings):
            problems.append(f"untranslated: {msgid!r} ({place})")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({place})")
        ids = [entry.id] if isinstance(entry.id, str) else list(entry.id)
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        for string in strings:
            if set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders differ: {msgid!r} -> {string!r}")
    return problems


def _po(language: Language) -> Catalog:
    path = LOCALE_DIR / language.value / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=language.value)


def test_the_source_has_messages_to_translate() -> None:
    messages = extracted()
    assert len(messages) > 300
    assert "Scenario:" in messages
    assert ("{n} problem", "{n} problems") in messages


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_every_message_is_translated_in_the_catalogue(language: Language) -> None:
    problems = catalogue_problems(extracted(), _po(language))
    assert not problems, "\n".join(problems[:40])


def test_the_check_finds_a_missing_and_an_untranslated_message() -> None:
    catalog = Catalog(locale="ja")
    catalog.add("known", "既知")
    catalog.add("empty", "")
    catalog.add("with {name}", "{name} 付き")
    catalog.add("renamed {name}", "{other}")
    problems = catalogue_problems(
        {
            "known": ["a.py:1"],
            "empty": ["a.py:2"],
            "absent": ["a.py:3"],
            "with {name}": ["a.py:4"],
            "renamed {name}": ["a.py:5"],
        },
        catalog,
    )
    assert problems == [
        "untranslated: 'empty' (a.py:2)",
        "missing: 'absent' (a.py:3)",
        "placeholders differ: 'renamed {name}' -> '{other}'",
    ]


@pytest.mark.parametrize("language", TRANSLATED, ids=str)
def test_the_compiled_catalogue_is_the_po_file(language: Language) -> None:
    """What gettext reads at run time (.mo) says what the committed .po says."""
    folder = LOCALE_DIR / language.value / "LC_MESSAGES"
    with (folder / f"{DOMAIN}.mo").open("rb") as handle:
        compiled = read_mo(handle)
    po = _po(language)

    def plain(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    source = {plain(m.id): plain(m.string) for m in po if m.id and not m.fuzzy}
    shipped = {plain(m.id): plain(m.string) for m in compiled if m.id}
    assert shipped == source, "run: bash scripts/catalogues.sh"
    runtime = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language.value])
    assert runtime.gettext("Scenario:") == source["Scenario:"]


def test_the_installed_package_ships_the_catalogues() -> None:
    """setuptools package-data must cover every .po and .mo under checks/locale."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["checks"]
    files = [p.relative_to(REPO / "checks").as_posix() for p in LOCALE_DIR.rglob("*.[pm]o")]
    assert any(f.endswith(".mo") for f in files)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
