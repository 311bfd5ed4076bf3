"""The real `relaycheck` command line in a subprocess, as a user or a cron job runs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def relaycheck(
    *args: str,
    cwd: Path = REPO,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        env=dict(env) if env is not None else None,
        timeout=60,
        check=False,
    )
