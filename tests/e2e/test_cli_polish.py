"""The CLI as a new user meets it: encodings, colour, plurals, words instead of internals."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from bot.cli.text import ago, degrade_unencodable, plural, use_colour, wrap
from checks.model import CheckId, Finding, Severity
from checks.report import render_table

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "contoso" / "relaycheck.toml"


def relaycheck(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PYTHONIO"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        cwd=REPO,
        env={**base, **env},
        timeout=60,
        check=False,
    )


def test_a_cp1252_stdout_degrades_instead_of_raising() -> None:
    done = relaycheck(
        "explain",
        "--config",
        str(EXAMPLE),
        "kate@contoso.com → info@例え.jp",
        PYTHONIOENCODING="cp1252",
    )
    assert done.returncode == 0, done.stderr.decode("cp1252")
    first = done.stdout.decode("cp1252").splitlines()[0]
    assert first == "kate@contoso.com -> info@??.jp"
    assert b"Traceback" not in done.stderr


def test_degrading_keeps_look_alikes() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="cp1252")
    degrade_unencodable(stream)
    stream.write("a → b ⇒ c ✓ 例 é …")  # cp1252 has é and …, not the others
    stream.flush()
    assert raw.getvalue().decode("cp1252") == "a -> b => c ok ? é …"


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_colour(Tty(), {}) is True
    assert use_colour(Tty(), {"NO_COLOR": "1"}) is False
    assert use_colour(io.StringIO(), {}) is False
    piped = relaycheck("scan", "--config", str(EXAMPLE))
    assert b"\x1b[" not in piped.stdout


def test_plurals_and_ages_in_words() -> None:
    assert plural(1, "finding") == "1 finding"
    assert plural(0, "finding") == "0 findings"
    assert plural(2, "open finding") == "2 open findings"
    assert ago(timedelta(seconds=30)) == "just now"
    assert ago(timedelta(minutes=1, seconds=5)) == "1 minute ago"
    assert ago(timedelta(days=3, hours=2)) == "3 days ago"


def finding(message: str, severity: Severity = Severity.CRITICAL) -> Finding:
    return Finding(check=CheckId.CERT_EXPIRY, severity=severity, subject="mail1", message=message)


def test_the_table_says_1_finding_and_wraps_under_its_column() -> None:
    one = render_table([finding("short")], {"counts": {"critical": 1}, "worst": "critical"})
    assert one.splitlines()[-1] == "1 finding (1 critical); worst: critical"
    long = "word " * 40
    table = render_table(
        [finding(long.strip()), finding("second", Severity.WARNING)],
        {"counts": {}, "worst": "critical"},
        width=80,
        style=lambda severity, cell: f"<{cell}>",
    )
    lines = table.splitlines()
    column = lines[0].index("MESSAGE")
    body = lines[1:-1]
    assert all(len(line) <= 80 + 2 for line in body)  # 2: the test's style markers
    assert body[0].startswith("<CRITICAL>")
    continuation = [line for line in body if not line.startswith("<")]
    assert len(continuation) >= 2
    assert all(line[:column].strip() == "" and line[column] != " " for line in continuation)
    assert any(line.startswith("<WARNING >") for line in body)  # padded before the colour
    # a pipe (no width) keeps every message whole on its line
    piped = render_table([finding(long.strip())], {"counts": {}, "worst": "critical"})
    assert len(piped.splitlines()) == 3


def test_wrap_without_width_is_one_line() -> None:
    assert wrap("a " * 100, None, "    ") == ["a " * 100]


def test_scan_of_the_example_says_what_it_needs() -> None:
    done = relaycheck("scan", "--config", str(EXAMPLE))
    out = done.stdout.decode()
    assert done.returncode == 2
    assert "connection refused by 127.0.0.1:2525" in out
    assert "Connect call failed" not in out
    assert out.splitlines()[-1].startswith(
        "Note: the example's smart host mail1 (127.0.0.1:2525) only runs while `relaycheck demo` does"
    )


def test_explain_at_a_later_time_never_shows_negative_days() -> None:
    done = relaycheck(
        "explain", "--config", str(EXAMPLE), "--at", "2037-01-01", "kate@contoso.com -> x@y.com"
    )
    out = done.stdout.decode()
    assert "EXPIRED on 2036-10-31, 62 days before 2037-01-01" in out
    assert "(-" not in out


def test_try_sh_prints_commands_that_paste_back(tmp_path: Path) -> None:
    script = (REPO / "scripts" / "try.sh").read_text()
    quote = script[script.index("quote() {") : script.index("\n}\n", script.index("quote() {")) + 3]
    args = ["explain", "<> -> john@fabrikam.com", "it's", "plain.toml", "a b"]
    probe = tmp_path / "probe.sh"
    probe.write_text(
        quote
        + 'line=""; for a in "$@"; do line+=" $(quote "$a")"; done\n'
        + 'eval "set -- $line"; printf "%s\\n" "$@"\n'
    )
    done = subprocess.run(
        ["bash", str(probe), *args], capture_output=True, text=True, timeout=10, check=True
    )
    assert done.stdout.splitlines() == args
    shown = subprocess.run(
        ["bash", "-c", quote + 'quote "<> -> john@fabrikam.com"'],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert shown.stdout == "'<> -> john@fabrikam.com'"
