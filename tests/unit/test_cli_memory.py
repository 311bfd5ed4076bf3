"""`keep_freed_memory`: glibc's allocator is told to keep freed heap memory; elsewhere nothing."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from bot.cli.common import keep_freed_memory


def test_asks_the_c_library_for_heap_allocations_and_no_trimming(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda _name: Libc())
    keep_freed_memory()
    # M_MMAP_THRESHOLD (-3) and M_TRIM_THRESHOLD (-1), as glibc's malloc.h numbers them
    assert calls == [(-3, 1 << 20), (-1, 64 << 20)]


@pytest.mark.parametrize("error", [OSError("no libc"), AttributeError("mallopt")])
def test_a_c_library_without_mallopt_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def refuse(_name: Any) -> Any:
        raise error

    monkeypatch.setattr(ctypes, "CDLL", refuse)
    keep_freed_memory()  # no exception: the scan runs with the allocator as it is
