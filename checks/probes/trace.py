"""Reading Exchange Online message-trace exports (CSV) into `TraceRow`s.

Three layouts are understood, recognised by their header row (Microsoft Learn documents the
columns; Export-Csv writes the property names as headers):

- `Get-MessageTraceV2 ... | Export-Csv`: Received, SenderAddress, RecipientAddress, Subject,
  Status, ToIP, FromIP, Size, MessageId, MessageTraceId (Status is Delivered, Failed, Pending,
  Expanded, Quarantined, FilteredAsSpam, GettingStatus; no reply text).
- `Get-MessageTraceDetailV2 ... | Export-Csv`: Date, Event, Action, Detail, Data, MessageId,
  MessageTraceId, RecipientAddress, SenderAddress (Event Fail/Defer/Drop rows carry the SMTP
  reply in Detail, e.g. `Reason: [{LED=550 5.7.64 TenantAttribution; ...}]`).
- the historical search report (`Start-HistoricalSearch`, the admin center's downloadable
  report): origin_timestamp_utc, sender_address, recipient_status, message_subject,
  total_bytes, message_id, network_message_id, original_client_ip, directionality,
  connector_id, delivery_priority; recipient_status is `address##Event, Event` per recipient,
  several recipients separated by `;`.

PowerShell writes UTF-16 with a BOM (`-Encoding Unicode`), UTF-8 with or without a BOM, and
Windows PowerShell 5.1 starts the file with a `#TYPE ...` line unless `-NoTypeInformation` is
given: all are accepted. Reading is I/O; the summary is `checks.rules.trace` (pure).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from checks.errors import RelaycheckError
from checks.rules.trace import TraceRow

MAX_TRACE_BYTES = 200 * 1024 * 1024

LAYOUT_SUMMARY = "Get-MessageTraceV2"
LAYOUT_DETAIL = "Get-MessageTraceDetailV2"
LAYOUT_HISTORICAL = "historical search report"

_SUMMARY_COLUMNS = {"received", "senderaddress", "recipientaddress", "status"}
_DETAIL_COLUMNS = {"date", "event", "detail"}
_HISTORICAL_COLUMNS = {"origin_timestamp_utc", "sender_address", "recipient_status"}


class TraceFileError(RelaycheckError):
    """A message-trace file that cannot be read or is not a layout relaycheck knows."""

    def __init__(self, problem: str, *, file: str) -> None:
        super().__init__(f"{file}: {problem}")


def decode(data: bytes, source: str) -> str:
    """Text of a CSV export whatever encoding PowerShell chose."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif len(data) >= 2 and data[1] == 0 and data[0] != 0:
        encoding = "utf-16-le"
    else:
        encoding = "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise TraceFileError(
            f"is not UTF-8 or UTF-16 text (decoding as {encoding} failed); export with "
            "Export-Csv -Encoding utf8",
            file=source,
        ) from None


def _time(text: str | None) -> datetime | None:
    """ISO 8601 (PowerShell 7, the report) or US `M/D/YYYY h:mm:ss AM` (Windows PowerShell)."""
    if not text or not text.strip():
        return None
    value = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        for pattern in ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M"):
            try:
                moment = datetime.strptime(value, pattern)
                break
            except ValueError:
                continue
        else:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rows(reader: csv.DictReader[str]) -> Iterator[Mapping[str, str]]:
    for row in reader:
        yield {(k or "").strip().lower(): (v or "") for k, v in row.items() if k is not None}


def parse_trace(text: str, source: str) -> tuple[str, list[TraceRow]]:
    """The layout name and the rows of a trace export's text."""
    lines = text.splitlines(keepends=True)
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#TYPE")):
        lines.pop(0)
    if not lines:
        raise TraceFileError("is empty", file=source)
    reader = csv.DictReader(io.StringIO("".join(lines)))
    header = {(h or "").strip().lower() for h in reader.fieldnames or ()}
    rows: list[TraceRow] = []
    if header >= _HISTORICAL_COLUMNS:
        for row in _rows(reader):
            at = _time(row.get("origin_timestamp_utc"))
            for part in row.get("recipient_status", "").split(";"):
                if not part.strip():
                    continue
                address, _sep, events = part.partition("##")
                last = events.split(",")[-1].strip() if events else ""
                rows.append(
                    TraceRow(
                        at=at,
                        sender=row.get("sender_address", ""),
                        recipient=address.strip(),
                        status=last,
                        detail=events,
                    )
                )
        return LAYOUT_HISTORICAL, rows
    if header >= _DETAIL_COLUMNS:
        for row in _rows(reader):
            rows.append(
                TraceRow(
                    at=_time(row.get("date")),
                    sender=row.get("senderaddress", ""),
                    recipient=row.get("recipientaddress", ""),
                    status=row.get("event", ""),
                    detail=" ".join(p for p in (row.get("detail"), row.get("data")) if p),
                )
            )
        return LAYOUT_DETAIL, rows
    if header >= _SUMMARY_COLUMNS:
        for row in _rows(reader):
            rows.append(
                TraceRow(
                    at=_time(row.get("received")),
                    sender=row.get("senderaddress", ""),
                    recipient=row.get("recipientaddress", ""),
                    status=row.get("status", ""),
                    detail=row.get("detail", ""),
                )
            )
        return LAYOUT_SUMMARY, rows
    shown = ", ".join(sorted(h for h in header if h)) or "none"
    raise TraceFileError(
        "is not a message trace export relaycheck knows (columns: "
        f"{shown}); export Get-MessageTraceV2 or Get-MessageTraceDetailV2 with Export-Csv, "
        "or download the historical search report",
        file=source,
    )


def read_trace(path: Path) -> tuple[str, list[TraceRow]]:
    """Read and parse a trace export file (`-` is not handled here: the CLI reads stdin)."""
    shown = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_TRACE_BYTES:
            raise TraceFileError(
                f"is {size} bytes; at most {MAX_TRACE_BYTES} (export a shorter time range)",
                file=shown,
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise TraceFileError("file not found", file=shown) from None
    except IsADirectoryError:
        raise TraceFileError("is a directory, not a trace export", file=shown) from None
    except OSError as err:
        raise TraceFileError(f"cannot read ({err.strerror})", file=shown) from None
    return parse_trace(decode(data, shown), shown)
