"""A consistent snapshot of the embedded stores, taken while the platform runs, and its restore.

What is saved is collected, not listed here: the core's own stores (the embedded bus, the
attachments on disk) and, for every installed service, its SQLite database plus what its
plugin's `backup` function names (keys, a search generation…). Each item is copied the way its
kind needs:

- ``sqlite``: SQLite's online backup API, a consistent copy of a database in use (WAL too);
- ``file``: copied, with its SHA-256 in the manifest;
- ``tree``: a folder of files written once and never changed in place (attachments, index
  segments); a SQLite database inside it is copied through the backup API, its -wal and -shm
  left out; a `check` may confirm that the copy is whole (a search index whose segments were
  merged away during the copy is copied again).

The backup folder holds the copies and ``manifest.json`` (what, from where, sizes, hashes).
`restore` checks every hash first, refuses to overwrite a data directory that has data unless
told to, and refuses while an `lgsp up` runs on it. PostgreSQL, S3 and Elasticsearch have their
own tools: see docs/operations.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import lgsp
from lgsp.config import Settings

MANIFEST = "manifest.json"
FORMAT = "lgsp-backup/v1"


@dataclass(frozen=True)
class Item:
    """One thing to save: `name` is its path inside the backup folder."""

    name: str
    source: Path
    kind: Literal["sqlite", "file", "tree"]
    # For a tree: True when the copy at the given path is whole (else it is copied again).
    check: Callable[[Path], bool] | None = field(default=None, compare=False)


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why."""


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL (bus or database), None for any other backend."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            return Path(url[len(prefix) :].split("?", 1)[0])
    return None


def items(settings: Settings) -> list[Item]:
    """Everything of the embedded form that holds state, for this configuration."""
    from lgsp.plugins import discover, resolve

    found: list[Item] = []
    bus = sqlite_path(settings.bus.url)
    if bus is not None:
        found.append(Item("bus.db", bus, "sqlite"))
    if settings.attachments.backend == "disk":
        found.append(Item("attachments", Path(settings.attachments.dir), "tree"))
    for name, plugin in discover().items():
        database = sqlite_path(settings.service(name).database_url)
        if database is not None:
            found.append(Item(f"{name}/{name}.db", database, "sqlite"))
        if plugin.backup is not None:
            for item in resolve(plugin.backup)(settings):
                found.append(Item(f"{name}/{item.name}", item.source, item.kind, item.check))
    return found


def backup(
    settings: Settings, dest: Path, *, say: Callable[[str], None] = lambda line: None
) -> dict[str, object]:
    """Save every item into `dest` (created; must be empty); the manifest written."""
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    started = time.time()
    saved = []
    for item in items(settings):
        if not item.source.exists():
            say(f"  {item.name}: not there yet, skipped")
            continue
        target = dest / item.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if item.kind == "sqlite":
            _sqlite_copy(item.source, target)
        elif item.kind == "file":
            shutil.copy2(item.source, target)
        else:
            _tree_copy(item, target)
        entry = _describe(item.name, target, item.kind)
        entry["source"] = str(item.source)
        saved.append(entry)
        say(f"  {item.name}: {entry['bytes']:,} bytes")
    manifest: dict[str, object] = {
        "format": FORMAT,
        "lgsp": lgsp.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
        "items": saved,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def restore(
    settings: Settings,
    source: Path,
    *,
    force: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> int:
    """Put a backup back where this configuration keeps its stores; the items restored."""
    from lgsp.runner import read_state

    manifest = _manifest(source)
    if read_state(settings) is not None:
        raise BackupError("an `lgsp up` runs on this data directory: stop it first")
    where = {item.name: item for item in items(settings)}
    saved = manifest["items"]
    assert isinstance(saved, list)
    for entry in saved:  # every hash first: a damaged backup restores nothing
        if entry["name"] not in where:
            raise BackupError(f"{entry['name']}: no such store in this configuration")
        now = _describe(entry["name"], source / entry["name"], entry["kind"])
        if now["sha256"] != entry["sha256"]:
            raise BackupError(f"{entry['name']}: damaged (its SHA-256 does not match)")
    occupied = [where[e["name"]].source for e in saved if _has_data(where[e["name"]].source)]
    if occupied and not force:
        raise BackupError(
            f"{occupied[0]} already has data (and {len(occupied) - 1} more): restore into a "
            "fresh data directory, or --force to replace it"
        )
    for entry in saved:
        target = where[entry["name"]].source
        copy = source / entry["name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry["kind"] == "tree":
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(copy, target)
        else:
            for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                stale.unlink(missing_ok=True)
            shutil.copy2(copy, target)
            if entry["kind"] == "file":
                os.chmod(target, copy.stat().st_mode)
        say(f"  {entry['name']} → {target}")
    return len(saved)


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    finally:
        dst.close()
        src.close()


def _tree_copy(item: Item, target: Path) -> None:
    def copy(src: str, dst: str) -> None:
        if src.endswith(".db"):
            _sqlite_copy(Path(src), Path(dst))
        else:
            shutil.copy2(src, dst)

    skip = shutil.ignore_patterns("*.lock", "*.tmp", "*.db-wal", "*.db-shm", ".*.lock")
    for _attempt in range(5):
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(item.source, target, ignore=skip, copy_function=copy)
        if item.check is None or item.check(target):
            return
    raise BackupError(f"{item.name}: changed under the copy five times in a row; try again")


def _describe(name: str, path: Path, kind: str) -> dict[str, object]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    size = 0
    for f in files:
        digest.update(str(f.relative_to(path) if path.is_dir() else "").encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    return {
        "name": name,
        "kind": kind,
        "bytes": size,
        "files": len(files),
        "sha256": digest.hexdigest(),
    }


def _manifest(source: Path) -> dict[str, object]:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source}: no readable {MANIFEST} ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source}: not an LGSP backup ({manifest.get('format')!r})")
    return dict(manifest)


def _has_data(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()
