"""The submission inbox on disk: one folder per submitting observatory.

``<root>/<submitter>/<file>`` is picked up, ingested, then moved to ``<processed>/<submitter>/``
after a clean ingest, or to ``<quarantine>/<submitter>/`` (with ``<file>.receipt.json`` beside it)
when any line was rejected or the ingest failed. The catalog keeps the raw bytes either way.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True, slots=True)
class InboxFile:
    submitter: str
    path: Path


def scan(root: Path) -> list[InboxFile]:
    """Files waiting in the inbox, oldest first (hidden and partial ``.part`` files skipped)."""
    if not root.is_dir():
        return []
    found: list[InboxFile] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in folder.iterdir():
            if path.is_file() and not path.name.startswith(".") and path.suffix != ".part":
                found.append(InboxFile(folder.name, path))
    found.sort(key=lambda f: (f.path.stat().st_mtime, str(f.path)))
    return found


def _unique(target: Path) -> Path:
    if not target.exists():
        return target
    for i in range(1, 1_000_000):
        candidate = target.with_name(f"{target.stem}.{i}{target.suffix}")
        if not candidate.exists():
            return candidate
    raise FileExistsError(target)


def settle(item: InboxFile, receipt: dict[str, Any] | None, processed: Path,
           quarantine: Path, error: str | None = None) -> Path:
    """Move an ingested file out of the inbox; returns its new path."""
    clean = error is None and receipt is not None and not receipt.get("rejected")
    base = (processed if clean else quarantine) / item.submitter
    base.mkdir(parents=True, exist_ok=True)
    target = _unique(base / item.path.name)
    shutil.move(str(item.path), target)
    if not clean:
        note = dict(receipt or {})
        if error:
            note["error"] = error
        target.with_name(target.name + ".receipt.json").write_text(json.dumps(note, indent=2))
    return target


def iter_files(paths: list[str | Path]) -> Iterator[Path]:
    """Expand files and directories given on a command line (directories: their files, sorted)."""
    for p in map(Path, paths):
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.is_file())
        else:
            yield p
