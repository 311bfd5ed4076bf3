"""Terminal text for the CLI: plurals, ages, colour, and output that never fails to encode.

- Colour only on a terminal, never in a pipe or a file, and never when `NO_COLOR` is set
  (https://no-color.org: any non-empty value).
- Output to a stream that is not UTF-8 (`PYTHONIOENCODING=cp1252`, an old Windows console, a
  C locale) must not raise `UnicodeEncodeError` halfway through a table: characters the
  encoding lacks degrade to ASCII look-alikes (`→` becomes `->`) and anything else to `?`.
"""

from __future__ import annotations

import codecs
import io
import os
import shutil
import textwrap
from collections.abc import Mapping
from datetime import timedelta
from typing import TextIO

from checks.model import Severity

ERRORS = "relaycheck-degrade"
_LOOKALIKES = {
    "→": "->",
    "←": "<-",
    "⇒": "=>",
    "—": "-",
    "–": "-",
    "…": "...",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "•": "*",
    "·": "*",
    "✓": "ok",
    "✗": "x",
    "≥": ">=",
    "≤": "<=",
    "\u00a0": " ",
}
_COLOURS = {
    Severity.CRITICAL: "\033[1;31m",
    Severity.WARNING: "\033[33m",
    Severity.INFO: "\033[36m",
    Severity.OK: "\033[32m",
}
_RESET = "\033[0m"


def _degrade(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeEncodeError):
        raise err
    bad = err.object[err.start : err.end]
    return "".join(_LOOKALIKES.get(ch, "?") for ch in bad), err.end


codecs.register_error(ERRORS, _degrade)


def degrade_unencodable(*streams: TextIO) -> None:
    """Let each text stream replace what its encoding cannot say instead of raising."""
    for stream in streams:
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=ERRORS)


def use_colour(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(severity: Severity, text: str) -> str:
    return f"{_COLOURS[severity]}{text}{_RESET}"


def terminal_width(stream: TextIO) -> int | None:
    """The terminal's width, or None in a pipe or file (no wrapping: scripts get whole lines)."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size((100, 24)).columns


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 finding`, `2 findings`, `0 findings`."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def ago(delta: timedelta) -> str:
    """How long ago, in the largest whole unit: `just now`, `5 minutes ago`, `2 days ago`."""
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{plural(seconds // size, unit)} ago"
    return "just now"


def wrap(text: str, width: int | None, indent: str) -> list[str]:
    """`text` as the lines of a column starting after `indent`: whole without a width."""
    if width is None or width - len(indent) < 30:
        return [text]
    return textwrap.wrap(
        text, width=width - len(indent), break_long_words=False, break_on_hyphens=False
    ) or [""]
