"""Log lines of `relaycheck serve`: one line per event, `key=value` or JSON, secrets masked.

- `key=value` (logfmt) by default, `json` with `--log-format json` or `[log] format`: one
  object per line, for log shippers. A traceback stays inside its line (escaped), so a line
  is always one event.
- Libraries talk at INFO about their own plumbing (APScheduler's "Adding job tentatively",
  "Running job ...", bolt's session notices); that is DEBUG for an operator: `LibraryChatter`
  moves their INFO lines to DEBUG. Their warnings and errors stay what they are.
- `Redactor` replaces every secret value it was given (Slack tokens, the signing secret, the
  Graph client secret, PFX passwords) and anything shaped like a Slack token with <SECRET>, in
  the message and in every field, whatever logged it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from checks.model import LogFormat

MASK = "<SECRET>"
CHATTY = ("apscheduler", "slack_bolt", "slack_sdk", "aiohttp.access", "asyncio")
_TOKEN = re.compile(r"\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{4,}")
_BARE = re.compile(r"^[A-Za-z0-9_.:/@+-]+$")
# attributes every LogRecord has; anything else was passed with `extra=` and is a field
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class Redactor:
    """Masks secret values (and Slack-token-shaped strings) in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret that contains another is masked whole
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return _TOKEN.sub(MASK, text)


class LibraryChatter(logging.Filter):
    """Libraries' INFO becomes DEBUG; then only records at or above `threshold` pass."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and record.name.startswith(CHATTY):
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
        return record.levelno >= self.threshold


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for name, value in vars(record).items():
        if name not in _STANDARD and not name.startswith("_"):
            fields[name] = value
    if record.exc_info and record.exc_info[1] is not None:
        err = record.exc_info[1]
        fields["error"] = f"{type(err).__name__}: {err}"
        fields["traceback"] = logging.Formatter().formatException(record.exc_info)
    return fields


class _Formatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        return {k: self.redact(v) if isinstance(v, str) else v for k, v in _fields(record).items()}


class KeyValueFormatter(_Formatter):
    """`ts=... level=info logger=relaycheck.scheduler msg="job certificates started"`."""

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        for key, value in self.fields(record).items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            if not _BARE.match(text):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{key}={text}")
        return " ".join(parts)


class JsonFormatter(_Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=False, default=str)


def configure_logging(
    *,
    fmt: LogFormat,
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record (relaycheck's and the libraries') through one handler."""
    threshold = logging.getLevelNamesMapping()[level.upper()]
    handler = logging.StreamHandler(stream or sys.stderr)
    redact = Redactor(secrets)
    handler.setFormatter(
        JsonFormatter(redact) if fmt is LogFormat.JSON else KeyValueFormatter(redact)
    )
    handler.addFilter(LibraryChatter(threshold))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # libraries' INFO must reach the filter to be turned into DEBUG (and dropped at INFO)
    root.setLevel(min(threshold, logging.INFO))
    # bolt copies the root level into the logger named after the app ("relaycheck") when the
    # app is built; one built earlier (under another root level) must not mute our INFO lines
    logging.getLogger("relaycheck").setLevel(logging.NOTSET)
    return handler
