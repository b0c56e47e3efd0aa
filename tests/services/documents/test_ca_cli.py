"""`lgsp documents ca issue | revoke | list` against a temp data dir (run through
lgsp.cli.main); names and agencies come from a running identity service over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lgsp.cli import main
from services.documents.adapters.signatures import DevCASignatures
from tests.support import free_port


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LGSP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./lgsp.toml from the repository
    return tmp_path


@contextlib.contextmanager
def identity_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The real identity service on free ports, on its own event loop in a thread (the CLI
    runs asyncio.run in this one), reading the same settings as the CLI."""
    from lgsp.app import ServiceRuntime
    from lgsp.config import load_settings
    from services.identity.plugin import PLUGIN

    http_port = free_port()
    monkeypatch.setenv("LGSP_IDENTITY_HTTP_PORT", str(http_port))
    monkeypatch.setenv("LGSP_IDENTITY_GRPC_PORT", str(free_port()))
    monkeypatch.setenv("LGSP_TELEMETRY_ENABLED", "false")
    monkeypatch.setenv("LGSP_IDENTITY_ADMIN_PASSWORD", "Quan-Tri-Th3-Test!")
    settings = load_settings()
    runtime = ServiceRuntime(PLUGIN.with_options(seed_demo=False), settings)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(runtime.start(), loop).result(30)
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{http_port}/healthz").status_code == 200:
                    break
            time.sleep(0.05)
        yield
    finally:
        asyncio.run_coroutine_threadsafe(runtime.stop(grace=0), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def index(data_dir: Path) -> dict[str, dict[str, object]]:
    return json.loads((data_dir / "ca" / "index.json").read_text())  # type: ignore[no-any-return]


def test_issue_list_revoke(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "documents",
                "ca",
                "issue",
                "--user",
                "lethihoa.stp",
                "--name",
                "Lê Thị Hoa",
                "--agency-code",
                "000.00.12.H27",
                "--agency-name",
                "Sở Tư pháp",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    (serial,) = index(data_dir)
    assert f"issued {serial}" in out.out and "CN=Lê Thị Hoa" in out.out
    assert "issuing a certificate for lethihoa.stp" in out.err
    # The service finds it as the signer's certificate (user id defaults to the username).
    assert DevCASignatures(data_dir / "ca", auto_issue=False).certificate_of("lethihoa.stp") == (
        serial
    )
    assert main(["documents", "ca", "issue", "--agency", "000.00.12.H27", "--name", "STP"]) == 0
    assert len(index(data_dir)) == 2
    capsys.readouterr()
    assert main(["documents", "ca", "list"]) == 0
    listed = capsys.readouterr().out
    assert serial in listed and "official" in listed and "agency" in listed
    assert main(["documents", "ca", "revoke", serial, "--reason", "key_compromise"]) == 0
    assert "revoked (key_compromise)" in capsys.readouterr().out
    assert index(data_dir)[serial]["reason"] == "key_compromise"
    assert DevCASignatures(data_dir / "ca", auto_issue=False).certificate_of("lethihoa.stp") == ""
    main(["documents", "ca", "list"])
    assert serial not in capsys.readouterr().out
    main(["documents", "ca", "list", "--all"])
    assert "REVOKED" in capsys.readouterr().out
    assert main(["documents", "ca", "revoke", serial]) == 1
    assert "already revoked" in capsys.readouterr().err
    assert main(["documents", "ca", "revoke", "abc123"]) == 1


def test_issue_for_a_user_of_the_identity_directory(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        main(
            [
                "admin",
                "create-agency",
                "000.00.12.H27",
                "Sở Tư pháp",
                "--level",
                "department",
                "--short-name",
                "STP",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "admin",
                "create-user",
                "lethihoa.stp",
                "--name",
                "Lê Thị Hoa",
                "--agency",
                "000.00.12.H27",
                "--password",
                "Str0ng-Passw0rd!x",
            ]
        )
        == 0
    )
    user_id = capsys.readouterr().out.split("id ")[-1].strip()
    # The CLI asks identity with the documents service's client-credentials token.
    client = ["admin", "create-client", "documents", "--role", "clerk", "--agency", "000.00.12.H27"]
    assert main(client) == 0
    secret = capsys.readouterr().out.split("client secret (shown once): ")[-1].split()[0]
    monkeypatch.setenv("LGSP_DOCUMENTS_CLIENT_SECRET", secret)
    with identity_service(monkeypatch):
        issue_for_the_user(data_dir, capsys, user_id)


def issue_for_the_user(data_dir: Path, capsys: pytest.CaptureFixture[str], user_id: str) -> None:
    assert main(["documents", "ca", "issue", "--user", "lethihoa.stp"]) == 0
    out = capsys.readouterr().out
    assert "CN=Lê Thị Hoa" in out and "O=Sở Tư pháp" in out
    (entry,) = index(data_dir).values()
    assert entry["user_id"] == user_id and entry["agency_code"] == "000.00.12.H27"
    assert main(["documents", "ca", "issue", "--user", "nobody"]) == 1
    assert "no user nobody" in capsys.readouterr().err


def test_help_names_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["documents", "ca", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert all(word in text for word in ("issue", "revoke", "list", "<data_dir>/ca"))
