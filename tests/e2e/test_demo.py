"""`relaycheck demo` is the quick start's main job: it must tell its story on loopback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_catches_the_bad_renewal(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    run1, run2 = out.split("== Scheduled run 1")[1].split("== Scheduled run 2")
    assert "worst: ok" in run1
    assert "[relaycheck ALERT]" not in run1
    # the preflight judged the bad renewal before it was served
    before_bound = run1.split("relaycheck preflight mail1-renewed.pem")[1]
    assert before_bound.lstrip().startswith("BINDING BREAKS RELAY: NDRs and forwards")
    assert "Set-SendConnector" in before_bound
    assert "CRITICAL  san-coverage" in run2
    assert "[relaycheck ALERT] critical: New san-coverage" in run2
    assert "Names removed:* mail1.contoso.com, mail2.contoso.com" in run2
    assert "Verdict:     REFUSED: 550 5.7.64" in out
    assert "== Caught" in out
    assert not list(tmp_path.iterdir())  # the demo leaves nothing behind
