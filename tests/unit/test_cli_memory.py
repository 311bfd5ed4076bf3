"""`keep_freed_memory`: glibc's allocator keeps freed heap memory; elsewhere nothing happens."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli.common import keep_freed_memory

REPO = Path(__file__).resolve().parents[2]

# What a scan does to the heap, reduced: TLS connections come and go, each with asyncio's
# 256 KiB read buffer. Counts the page faults of 20 such rounds after two to warm up.
CHURN = """
import resource, sys
from bot.cli.common import keep_freed_memory
if sys.argv[1] == "keep":
    keep_freed_memory()
def connections_come_and_go():
    buffers = [bytearray(256 * 1024) for _ in range(16)]
    del buffers
connections_come_and_go()
connections_come_and_go()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    connections_come_and_go()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CHURN, mode],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    return int(done.stdout)


def _glibc() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallopt")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's; elsewhere the call does nothing")
def test_freed_buffers_are_reused_instead_of_faulted_in_again() -> None:
    # glibc's defaults trim the freed 4 MiB and fault it in again every round (~1,000 pages)
    assert page_faults("default") > 5_000
    assert page_faults("keep") < 500


@pytest.mark.parametrize("error", [OSError("no libc"), AttributeError("mallopt")])
def test_a_c_library_without_mallopt_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def refuse(_name: Any) -> Any:
        raise error

    monkeypatch.setattr(ctypes, "CDLL", refuse)
    keep_freed_memory()  # no exception: the scan runs with the allocator as it is
