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

Consistency across stores: the backup holds the embedded bus still while it copies. It takes
the bus's write lock (``BEGIN IMMEDIATE``: readers go on, every publish, offset commit and
heartbeat waits, up to the bus's 30 s busy timeout) and copies the bus and then every service
store under it. So every event on the copied bus came from an outbox row the copied databases
hold; every store derived from events (the search index, a consumer's tables) reflects only
events on the copied bus; every outbox row a copy marks as sent has its event on the copied
bus, and a row not yet sent is published at start. A consumer resumes at its committed offset
and sees again what it applied but had not committed (it skips those by their ids). The
attachments are copied last, after the lock: files are written once, before the row naming
them commits, so every file a copied row names is there. (An earlier version copied the bus
twice, offsets first and records last; under load the records then held events of documents
the copied documents database did not, and search found documents that did not exist.)

The copy is made in ``DIR.partial`` and renamed to DIR once the manifest is written: an
interrupted backup (Ctrl-C, a full disk) never leaves a folder that looks complete. Every
SQLite copy passes ``PRAGMA quick_check``; a damaged store, or a data directory holding none
of the stores (a wrong --config), is refused with the reason.

`restore` checks every hash first, refuses to overwrite a data directory that has data unless
told to, and refuses while the platform runs on it (an `lgsp up`, or any process holding one
of its stores open). PostgreSQL, S3 and Elasticsearch have their own tools: see
docs/operations.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
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
    # For a tree: shutil.copytree's `ignore` (names in a folder not to copy), besides the
    # locks and SQLite -wal/-shm files that are never copied.
    ignore: Callable[[str, list[str]], set[str]] | None = field(default=None, compare=False)


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
        found.append(Item(ATTACHMENTS, Path(settings.attachments.dir), "tree"))
    for name, plugin in discover().items():
        database = sqlite_path(settings.service(name).database_url)
        if database is not None:
            found.append(Item(f"{name}/{name}.db", database, "sqlite"))
        if plugin.backup is not None:
            for item in resolve(plugin.backup)(settings):
                found.append(dataclasses.replace(item, name=f"{name}/{item.name}"))
    return found


BUS = "bus.db"
ATTACHMENTS = "attachments"
# What the console keeps is not saved: its traces are a day of diagnostics (up to 200k spans,
# they would be most of a backup and describe the platform before the restore, not after),
# and its session key and OTLP token are remade on first start, which every process of the
# data directory reads. Keeping them would only put two more live credentials into every copy.
NOT_SAVED = "console: traces, session key and OTLP token are not saved (remade at start)"


def backup(
    settings: Settings, dest: Path, *, say: Callable[[str], None] = lambda line: None
) -> dict[str, object]:
    """Save every item into `dest` (created; must be empty); the manifest written."""
    todo = items(settings)
    for item in todo:  # a folder saved into itself would be copied level after level
        if item.kind == "tree" and dest.resolve().is_relative_to(item.source.resolve()):
            raise BackupError(f"{dest} is inside {item.name} ({item.source}), which it saves")
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} is a file, not a folder")
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty")
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        raise BackupError(f"data directory {data_dir} does not exist (wrong --config?)")
    present = [item for item in todo if item.source.exists()]
    if not present:
        raise BackupError(f"{data_dir} holds none of the platform's stores (wrong --config?)")
    work = dest.with_name(dest.name + ".partial")
    if work.exists():  # left by an interrupted run: it is not a backup
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        manifest = _save(todo, work, say)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
        if dest.exists():
            dest.rmdir()  # empty, checked above
        work.rename(dest)
    except BaseException:  # Ctrl-C too: nothing half-written is left behind
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _save(todo: list[Item], work: Path, say: Callable[[str], None]) -> dict[str, object]:
    started = time.time()
    saved = []
    present = [item for item in todo if item.source.exists()]
    for item in todo:
        if item not in present:
            say(f"  {item.name}: not there yet, skipped")
    bus = next((i for i in present if i.name == BUS), None)
    # Written once, before the rows that name them commit: copied after the lock.
    late = [i for i in present if i.name == ATTACHMENTS]
    with _bus_held(bus.source if bus is not None else None):
        for item in present:
            if item not in late:
                saved.append(_copy(item, work, say))
    for item in late:
        saved.append(_copy(item, work, say))
    say(f"  {NOT_SAVED}")
    return {
        "format": FORMAT,
        "lgsp": lgsp.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3),
        "items": saved,
    }


def _copy(item: Item, work: Path, say: Callable[[str], None]) -> dict[str, object]:
    target = work / item.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if item.kind == "sqlite":
        _sqlite_copy(item, target)
        if item.name == BUS:
            _forget_members(target)
    elif item.kind == "file":
        shutil.copy2(item.source, target)
    else:
        _tree_copy(item, target)
    return _saved(item, target, say)


@contextlib.contextmanager
def _bus_held(path: Path | None) -> Iterator[None]:
    """The embedded bus's write lock for the duration: nothing is published or committed on
    it while the stores are copied (readers, and the copies, go on)."""
    if path is None:
        yield
        return
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        conn.close()


def _saved(item: Item, target: Path, say: Callable[[str], None]) -> dict[str, object]:
    entry = _describe(item.name, target, item.kind)
    entry["source"] = str(item.source)
    say(f"  {item.name}: {entry['bytes']:,} bytes")
    return entry


def _forget_members(copy: Path) -> None:
    """The running platform's consumer-group members out of the copy of the bus (they would
    hold their partitions in the restored one until their session timed out); the committed
    offsets stay."""
    with contextlib.closing(sqlite3.connect(copy)) as conn, conn:
        for table in ("bus_members", "bus_owners"):
            with contextlib.suppress(sqlite3.OperationalError):  # no group ever joined
                conn.execute(f"DELETE FROM {table}")


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
    saved = _entries(manifest)
    for entry in saved:  # every check first: a damaged or changed backup restores nothing
        _check(entry, where, source)
    busy = _open_by(where[e["name"]].source for e in saved)
    if busy:
        path, pid, what = busy
        raise BackupError(f"{path} is open in process {pid} ({what}): stop the platform first")
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
        # Each store is copied beside its place and renamed into it: whole or not at all.
        tmp = target.with_name(f".{target.name}.restoring")
        _remove(tmp)
        if where[entry["name"]].kind == "tree":
            shutil.copytree(copy, tmp)
        else:
            shutil.copy2(copy, tmp)
        for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            _remove(stale)
        tmp.rename(target)
        say(f"  {entry['name']} → {target}")
    return len(saved)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _open_by(paths: Iterable[Path]) -> tuple[Path, int, str] | None:
    """A store (or a file under a store folder) some process holds open: (path, pid, command).
    Through /proc (Linux); elsewhere only the `lgsp up` check above applies."""
    wanted = [p.resolve() for p in paths]
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                opened = Path(os.readlink(fd))
            except OSError:
                continue
            for path in wanted:
                if (
                    opened == path
                    or opened.is_relative_to(path)
                    or str(opened)
                    in (
                        f"{path}-wal",
                        f"{path}-shm",
                    )
                ):
                    cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ")
                    return path, int(pid_dir.name), cmd.decode(errors="replace").strip()
    return None


def _sqlite_copy(item: Item | Path, target: Path) -> None:
    """A consistent copy of a database in use, checked: a damaged one is refused."""
    source = item.source if isinstance(item, Item) else item
    name = item.name if isinstance(item, Item) else source.name
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        ) as src:
            with contextlib.closing(sqlite3.connect(target)) as dst:
                with dst:
                    src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                problems = [row[0] for row in dst.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{name}: {source} cannot be read as a database ({exc})") from None
    if problems != ["ok"]:
        raise BackupError(f"{name}: {source} is damaged ({'; '.join(problems[:3])})")


def _tree_copy(item: Item, target: Path) -> None:
    def copy(src: str, dst: str) -> None:
        if src.endswith(".db"):
            _sqlite_copy(Path(src), Path(dst))
        else:
            shutil.copy2(src, dst)

    never = shutil.ignore_patterns("*.lock", "*.tmp", "*.db-wal", "*.db-shm", ".*.lock")

    def skip(folder: str, names: list[str]) -> set[str]:
        extra = item.ignore(folder, names) if item.ignore is not None else set()
        return set(never(folder, names)) | set(extra)

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
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BackupError(f"{source}: not an LGSP backup ({found!r})")
    return dict(manifest)


def _entries(manifest: dict[str, object]) -> list[dict[str, str]]:
    """The manifest's items, each with a text name, kind and hash: it is read from a folder
    anyone may have changed, so its shape is checked before any of it is used."""
    saved = manifest.get("items")
    if not isinstance(saved, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("name"), str) for entry in saved
    ):
        raise BackupError(f"{MANIFEST}: items is not a list of stores with their names")
    if not saved:  # a backup always holds a store (backup refuses a data directory without)
        raise BackupError(f"{MANIFEST}: items names no store; nothing to restore")
    for entry in saved:
        for key in ("kind", "sha256"):
            if not isinstance(entry.get(key), str):
                raise BackupError(f"{entry['name']}: {MANIFEST} gives no {key}")
    return saved


def _check(entry: dict[str, str], where: dict[str, Item], source: Path) -> None:
    """One saved store is what this configuration keeps under its name, of the same kind,
    without links (a link would copy whatever it points at), and undamaged."""
    name = entry["name"]
    item = where.get(name)
    if item is None:
        raise BackupError(f"{name}: no such store in this configuration")
    if entry["kind"] != item.kind:
        raise BackupError(f"{name}: the manifest says {entry['kind']}, the store is a {item.kind}")
    copy = source / name
    expected = copy.is_dir() and not copy.is_symlink() if item.kind == "tree" else copy.is_file()
    if not expected:
        raise BackupError(f"{name}: missing from the backup, or not a {item.kind}")
    inside = [copy, *copy.rglob("*")] if item.kind == "tree" else [copy]
    if any(p.is_symlink() for p in inside):
        raise BackupError(f"{name}: the backup holds a link; a backup holds files only")
    if _describe(name, copy, item.kind)["sha256"] != entry["sha256"]:
        raise BackupError(f"{name}: damaged (its SHA-256 does not match)")


def _has_data(path: Path) -> bool:
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()
