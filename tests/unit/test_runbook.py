"""docs/runbook.md and docs/runbook.ja.md: a section per check id and per triage status,
anchored by the id, so `[alerts] runbook_url` + `#<id>` always lands on the right one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from checks.model import CheckId
from checks.rules.replies import ENTRY_KEYS, UNKNOWN_KEY

DOCS = Path(__file__).resolve().parents[2] / "docs"
IDS = [c.value for c in CheckId] + [*ENTRY_KEYS, UNKNOWN_KEY]
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def anchors(text: str) -> list[str]:
    return re.findall(r'<a id="([^"]+)"></a>', text)


@pytest.mark.parametrize("name", ["runbook.md", "runbook.ja.md"])
def test_every_check_id_and_triage_status_has_its_section(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    found = anchors(text)
    assert len(found) == len(set(found))
    missing = [i for i in IDS if i not in found]
    assert not missing, f"{name} lacks sections for {missing}"
    for ident in IDS:  # the anchor sits right before the section's heading
        assert re.search(rf'<a id="{re.escape(ident)}"></a>\n### {re.escape(ident)}\n', text)
    for link in re.findall(r"\]\(#([^)]+)\)", text):  # internal links land on an anchor
        assert link in found, link


def test_the_japanese_runbook_is_japanese_and_the_english_one_is_not() -> None:
    english = (DOCS / "runbook.md").read_text(encoding="utf-8")
    japanese = (DOCS / "runbook.ja.md").read_text(encoding="utf-8")
    sections = japanese.split("\n### ")[1:]
    assert len(sections) == len(IDS)
    assert all(JAPANESE.search(s) for s in sections)
    assert not JAPANESE.search(english)
    for word in ("コネクタ", "承認済みドメイン", "証明書", "リレー", "配信不能レポート (NDR)"):
        assert word in japanese
