"""`npsloop import FILE`: load a CSV or JSON Lines export from a POS or survey tool into ingest.

It talks to ingest over HTTP like any other client (`POST /v1/feedback:batch`), with the source key
from NPSLOOP_API_KEY. Each row's event id derives from the file's name, the row's line and its
content, so re-running after an interruption doubles nothing: what was accepted comes back as a
duplicate. Rejected rows are written, with their line numbers and reasons, to `<FILE>.rejects`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

IMPORT_NAMESPACE = uuid.UUID("8a4c3f5e-6b2d-4e71-9c0a-1f2e3d4c5b6a")
FIELDS = (
    "score",
    "channel",
    "comment",
    "customer_id",
    "store_id",
    "locale",
    "occurred_at",
    "event_id",
    "consent_to_contact",
    "contact.name",
    "contact.email",
    "contact.phone",
)


@dataclass
class Totals:
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    started: float = field(default_factory=time.monotonic)


def rows_of(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for every row; JSON Lines rows that are not objects count as rows too."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            for row in reader:
                yield reader.line_num, dict(row)
        else:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except ValueError as exc:
                        yield number, {"__invalid__": f"not JSON: {exc}"}


def to_item(
    row: dict[str, Any], mapping: dict[str, str], fixed: dict[str, str], source: str, line: int
) -> dict[str, Any]:
    """The API item for one row: mapped columns, fixed values, and an event id derived from the row."""
    item: dict[str, Any] = {}
    for target in FIELDS:
        column = mapping.get(target, target)
        value = fixed.get(target, row.get(column))
        if value is None or value == "":
            continue
        if target == "score" and isinstance(value, str):
            value = _number(value)
        if target == "consent_to_contact" and isinstance(value, str):
            value = value.strip().lower() not in ("0", "false", "no", "n")
        if target.startswith("contact."):
            item.setdefault("contact", {})[target.split(".", 1)[1]] = value
        else:
            item[target] = value
    if "__invalid__" in row:
        item["__invalid__"] = row["__invalid__"]
    if "event_id" not in item:
        digest = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()
        item["event_id"] = str(uuid.uuid5(IMPORT_NAMESPACE, f"{source}:{line}:{digest}"))
    return item


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text  # sent as is: ingest names the problem


class Progress:
    """A bar with rate and ETA on a terminal; plain lines (every 10%) otherwise."""

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.tty = total, out, out.isatty()
        self.last_tenth = -1

    def update(self, t: Totals) -> None:
        elapsed = max(time.monotonic() - t.started, 1e-6)
        rate = t.rows / elapsed
        eta = (self.total - t.rows) / rate if rate > 0 else 0
        share = t.rows / self.total if self.total else 1.0
        if self.tty:
            bar = "#" * int(share * 30)
            self.out.write(f"\r[{bar:<30}] {t.rows}/{self.total} {rate:,.0f} rows/s ETA {eta:,.0f}s ")
            self.out.flush()
        elif int(share * 10) > self.last_tenth:
            self.last_tenth = int(share * 10)
            self.out.write(f"{t.rows}/{self.total} rows ({share:.0%}), {rate:,.0f} rows/s, ETA {eta:,.0f}s\n")
            self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")


def post_batch(client: Any, url: str, items: list[dict[str, Any]], attempts: int = 8) -> dict[str, Any]:
    """POST one batch; 429 and 503 are waited out (Retry-After), anything else is fatal."""
    delay = 1.0
    for _ in range(attempts):
        response = client.post(f"{url}/v1/feedback:batch", json={"items": items})
        if response.status_code == 200:
            result: dict[str, Any] = response.json()
            return result
        if response.status_code in (429, 503):
            time.sleep(float(response.headers.get("Retry-After", delay)))
            delay = min(delay * 2, 30)
            continue
        raise SystemExit(f"ingest answered {response.status_code}: {response.text[:500]}")
    raise SystemExit(f"ingest kept answering {response.status_code}; stopped. Re-run the same command to resume.")


def import_command(args: argparse.Namespace) -> int:
    import httpx

    path = Path(args.file)
    if not path.is_file():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    key = os.environ.get("NPSLOOP_API_KEY", "")
    if not key:
        print("set NPSLOOP_API_KEY to a source key (make run wrote one to .npsloop/dev-keys.env)", file=sys.stderr)
        return 2
    fmt = args.format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    mapping: dict[str, str] = {}
    if args.mapping:
        mapping.update(json.loads(Path(args.mapping).read_text()))
    for pair in args.map or []:
        target, _, column = pair.partition("=")
        mapping[target] = column
    fixed = dict(pair.partition("=")[::2] for pair in args.set or [])
    unknown = sorted((set(mapping) | set(fixed)) - set(FIELDS))
    if unknown:
        print(f"unknown target field(s) {unknown}; known: {', '.join(FIELDS)}", file=sys.stderr)
        return 2
    total = sum(1 for _ in rows_of(path, fmt))
    totals, progress = Totals(), Progress(total, sys.stderr)
    rejects_path = Path(f"{path}.rejects")
    source = path.name
    with (
        httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=60) as client,
        rejects_path.open("w") as rejects,
    ):
        batch: list[tuple[int, dict[str, Any]]] = []

        def flush() -> None:
            items = [item for _, item in batch]
            result = post_batch(client, args.url.rstrip("/"), items)
            for (line, item), r in zip(batch, result["results"], strict=True):
                if r["status"] == "accepted":
                    totals.accepted += 1
                elif r["status"] == "duplicate":
                    totals.duplicates += 1
                else:
                    totals.rejected += 1
                    rejects.write(json.dumps({"line": line, "errors": r.get("errors"), "item": item}) + "\n")
            totals.rows += len(batch)
            batch.clear()
            progress.update(totals)

        for line, row in rows_of(path, fmt):
            batch.append((line, to_item(row, mapping, fixed, source, line)))
            if len(batch) >= args.batch_size:
                flush()
        if batch:
            flush()
    progress.done()
    elapsed = time.monotonic() - totals.started
    print(
        f"{totals.rows} rows in {elapsed:.1f}s: {totals.accepted} accepted, {totals.duplicates} duplicates, "
        f"{totals.rejected} rejected" + (f" (see {rejects_path})" if totals.rejected else "")
    )
    if not totals.rejected:
        rejects_path.unlink(missing_ok=True)
    return 1 if totals.rejected else 0


def add_import_parser(sub: Any) -> None:
    p = sub.add_parser("import", help="load a CSV or JSON Lines export into ingest (NPSLOOP_API_KEY)")
    p.add_argument("file")
    p.add_argument("--format", choices=("csv", "jsonl"), help="default: from the file's extension")
    p.add_argument("--map", action="append", metavar="FIELD=COLUMN", help="e.g. --map score=NPS (repeatable)")
    p.add_argument("--mapping", metavar="FILE", help='a JSON file {"score": "NPS", "contact.email": "Mail"}')
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="a fixed value, e.g. --set channel=pos")
    p.add_argument("--url", default=os.environ.get("NPSLOOP_URL", "http://127.0.0.1:8000"), help="ingest's base URL")
    p.add_argument("--batch-size", type=int, default=500, choices=range(1, 1001), metavar="1..1000")
    p.set_defaults(func=import_command)
