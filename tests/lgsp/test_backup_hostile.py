"""Hostile inputs to `lgsp backup` and `lgsp restore`: a backup someone changed (every malformed
or hostile manifest is refused with a clear error before any store is replaced; the SHA-256s
check damage, not intent), a backup folder inside a store."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from lgsp.backup import BackupError, backup, restore
from lgsp.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


def _settings(data: Path) -> Settings:
    return load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(data)})


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real backup of a data directory with a database, a key file and a tree (the CA)."""
    root = tmp_path_factory.mktemp("made")
    live = root / "live"
    (live / "ca").mkdir(parents=True)
    (live / "ca" / "root.pem").write_text("certificate")
    (live / "gateway-log-signing-key.pem").write_text("key")
    import sqlite3

    with sqlite3.connect(live / "documents.db") as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.execute("INSERT INTO t VALUES ('văn bản')")
    conn.close()
    backup(_settings(live), root / "bk")
    return root / "bk"


def _tampered(made: Path, tmp: Path, change: Callable[[object], object]) -> Path:
    copy = tmp / "bk"
    shutil.copytree(made, copy, symlinks=True)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(change(manifest)))
    return copy


def _item(manifest: object, name: str) -> dict[str, object]:
    assert isinstance(manifest, dict)
    return next(i for i in manifest["items"] if i["name"] == name)


def _set(name: str, key: str, value: object) -> Callable[[object], object]:
    def change(manifest: object) -> object:
        if value is None:
            del _item(manifest, name)[key]
        else:
            _item(manifest, name)[key] = value
        return manifest

    return change


HOSTILE: list[tuple[str, Callable[[object], object], str]] = [
    ("not an object", lambda m: [m], "not an LGSP backup"),
    ("items not a list", lambda m: {**m, "items": "x"}, "manifest.json: items"),  # type: ignore[dict-item]
    ("an item not an object", lambda m: {**m, "items": [1]}, "manifest.json: items"),  # type: ignore[dict-item]
    ("no hash", _set("documents/documents.db", "sha256", None), "documents/documents.db"),
    ("no kind", _set("documents/ca", "kind", None), "documents/ca"),
    ("a name that is not text", _set("documents/ca", "name", 7), "manifest.json: items"),
    ("a tree said to be a file", _set("documents/ca", "kind", "file"), "documents/ca: .*tree"),
    ("a database said to be a tree", _set("documents/documents.db", "kind", "tree"), "sqlite"),
    ("no stores", lambda m: {**m, "items": []}, "names no store"),  # type: ignore[dict-item]
    ("a path out of the backup", _set("documents/ca", "name", "../../etc"), "no such store"),
]


@pytest.mark.parametrize(("what", "change", "error"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_tampered_manifest_is_refused_and_restores_nothing(
    made: Path, tmp_path: Path, what: str, change: Callable[[object], object], error: str
) -> None:
    bk = _tampered(made, tmp_path, change)
    fresh = tmp_path / "fresh"
    with pytest.raises(BackupError, match=error):
        restore(_settings(fresh), bk)
    assert not fresh.exists() or list(fresh.iterdir()) == []


def test_a_link_inside_a_backup_is_refused(made: Path, tmp_path: Path) -> None:
    """A link in a backup would copy whatever it points at into the data directory."""
    secret = tmp_path / "secret"
    secret.write_text("not the platform's")
    bk = _tampered(made, tmp_path, lambda m: m)
    (bk / "documents" / "ca" / "root.pem").unlink()
    (bk / "documents" / "ca" / "root.pem").symlink_to(secret)
    manifest = json.loads((bk / "manifest.json").read_text())
    from lgsp.backup import _describe

    _item(manifest, "documents/ca")["sha256"] = _describe("x", bk / "documents" / "ca", "tree")[
        "sha256"
    ]
    (bk / "manifest.json").write_text(json.dumps(manifest))
    fresh = tmp_path / "fresh"
    with pytest.raises(BackupError, match=r"documents/ca: .*link"):
        restore(_settings(fresh), bk)
    assert not (fresh / "ca").exists()


def test_the_command_names_a_malformed_manifest_without_a_traceback(
    made: Path, tmp_path: Path
) -> None:
    bk = _tampered(made, tmp_path, lambda m: {**m, "items": "x"})  # type: ignore[dict-item]
    env = {"LGSP_PLATFORM_DATA_DIR": str(tmp_path / "fresh"), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "lgsp.cli", "restore", str(bk)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "manifest.json: items" in done.stderr and "unexpected" not in done.stderr


def test_a_backup_inside_a_store_is_refused(tmp_path: Path) -> None:
    """A backup folder inside a folder it saves (attachments, the CA, the search index) would
    be copied into itself, level after level."""
    live = tmp_path / "live"
    (live / "ca").mkdir(parents=True)
    (live / "ca" / "root.pem").write_text("certificate")
    for inside in (live / "ca" / "bk", live / "ca"):
        with pytest.raises(BackupError, match=r"inside documents/ca"):
            backup(_settings(live), inside)
    assert sorted(p.name for p in (live / "ca").iterdir()) == ["root.pem"]


def test_a_file_is_no_backup_folder(tmp_path: Path) -> None:
    live = tmp_path / "live"
    live.mkdir()
    (live / "gateway-log-signing-key.pem").write_text("key")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(BackupError, match="a-file is a file, not a folder"):
        backup(_settings(live), tmp_path / "a-file")
