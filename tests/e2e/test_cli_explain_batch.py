"""`relaycheck explain --batch FILE|-`: one pair per line in, one JSON object per line out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "contoso" / "relaycheck.toml"

PAIRS = [
    "john@fabrikam.com -> kate@tailspintoys.com",
    "",
    "not a pair",
    "# a comment line",
    "<> -> john@fabrikam.com",
    "kate -> x@y.com",
    "Kate@Contoso.com → kate@tailspintoys.com",
]


def relaycheck(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def rows(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def single(pair: str) -> dict[str, object]:
    done = relaycheck("explain", "--config", str(EXAMPLE), "--json", pair)
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_batch_file_answers_each_line_and_reports_bad_lines(tmp_path: Path) -> None:
    batch = tmp_path / "pairs.txt"
    batch.write_text("\n".join(PAIRS) + "\n", encoding="utf-8")
    done = relaycheck("explain", "--config", str(EXAMPLE), "--batch", str(batch))
    assert done.returncode == 1, done.stderr  # two lines failed
    assert "Traceback" not in done.stderr
    answers = rows(done.stdout)
    # blank and comment lines are skipped; `line` is the line number in the file
    assert [a["line"] for a in answers] == [1, 3, 5, 6, 7]
    assert [a["input"] for a in answers] == [PAIRS[0], PAIRS[2], PAIRS[4], PAIRS[5], PAIRS[6]]
    first, bad, ndr, no_at, arrow = answers
    assert first["scenario"] == "forwarding"
    assert ndr["scenario"] == "ndr"
    assert arrow["scenario"] == "accepted-sender"
    assert "no separator" in str(bad["error"])
    assert "sender has no '@'" in str(no_at["error"])
    assert set(bad) == {"line", "input", "error"}
    # an answer is the `--json` object plus `line` and `input` (the parsed envelope, which
    # is `input` there, is `envelope` here)
    alone = single(PAIRS[0])
    expected = {**alone, "envelope": alone["input"], "input": PAIRS[0], "line": 1}
    assert first == expected


def test_batch_from_stdin_all_good_exits_0() -> None:
    text = "<> -> john@fabrikam.com\r\njohn@fabrikam.com -> kate@contoso.com\n"
    done = relaycheck("explain", "--config", str(EXAMPLE), "--batch", "-", stdin=text)
    assert done.returncode == 0, done.stderr
    answers = rows(done.stdout)
    assert [a["scenario"] for a in answers] == ["ndr", "to-tenant"]
    assert [a["input"] for a in answers] == ["<> -> john@fabrikam.com", answers[1]["input"]]
    assert all("error" not in a for a in answers)


def test_batch_via_and_at_apply_to_every_line() -> None:
    text = "a@fabrikam.com -> b@tailspintoys.com\n<> -> john@fabrikam.com\n"
    done = relaycheck(
        "explain",
        "--config",
        str(EXAMPLE),
        "--via",
        "kate@contoso.com",
        "--at",
        "2037-01-01T00:00Z",
        "--batch",
        "-",
        stdin=text,
    )
    assert done.returncode == 0, done.stderr
    forwarded, bounce = rows(done.stdout)
    assert forwarded["scenario"] == "forwarding"
    assert forwarded["envelope"] == {
        "sender": "a@fabrikam.com",
        "recipient": "b@tailspintoys.com",
        "via": "kate@contoso.com",
    }
    assert bounce["accepted"] is False  # the certificate has expired by then


def test_empty_batch_prints_nothing_and_exits_0() -> None:
    done = relaycheck("explain", "--config", str(EXAMPLE), "--batch", "-", stdin="\n\n")
    assert done.returncode == 0
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "/nonexistent/pairs.txt"], "no such file"),
        (["--batch", str(REPO)], "is a folder"),
        (["--batch", "-", "a@b.com -> c@d.com"], "not both"),
    ],
)
def test_batch_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    done = relaycheck("explain", "--config", str(EXAMPLE), *args, stdin="")
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
