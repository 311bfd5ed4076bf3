"""The corpus of real-world bounce texts: codes as pasted, entries, classes, in both languages."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from checks.i18n import Language, using
from checks.rules.replies import triage_all
from tests.data.bounces import CASES, Bounce

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
JARGON = re.compile(r"\b(seed|brief)\b", re.IGNORECASE)


def test_the_corpus_is_large_and_covers_every_layout() -> None:
    assert len(CASES) >= 40
    layouts = Counter(c.layout for c in CASES)
    for layout in ("ndr", "queue", "postfix", "protocol-log", "message-trace", "ndr-ja"):
        assert layouts[layout] >= 4, layout
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_bounce_is_explained_status_by_status_as_pasted(case: Bounce) -> None:
    answers = triage_all(case.text)
    assert tuple((a.code, a.key, a.status_class) for a in answers) == case.expected
    if case.scenario is not None:
        assert case.scenario in answers[0].scenarios
    for answer in answers:
        # the code in the heading is the text's: never replaced by another one
        assert answer.enhanced is not None
        pasted = answer.code.split()[: 2 if answer.code[:3].isdigit() else 1]
        assert re.search(r"[ -]+".join(map(re.escape, pasted)), case.text.translate(_FULL_WIDTH))
        assert not JARGON.search(" ".join((answer.meaning, answer.note or "", *answer.causes)))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_bounce_is_answered_in_japanese_too(case: Bounce) -> None:
    english = triage_all(case.text)
    with using(Language.JA):
        japanese = triage_all(case.text)
    assert [a.code for a in japanese] == [a.code for a in english]  # codes never translated
    for ja, en in zip(japanese, english, strict=True):
        assert JAPANESE.search(ja.meaning), ja.meaning
        assert ja.meaning != en.meaning
        assert all(JAPANESE.search(c) for c in ja.causes)


_FULL_WIDTH = str.maketrans({chr(0xFF10 + i): str(i) for i in range(10)} | {"．": "."})
