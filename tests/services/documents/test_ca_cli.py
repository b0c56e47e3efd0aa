"""`lgsp admin ca issue | revoke | list` against a temp data dir (run through lgsp.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lgsp.cli import main
from services.documents.adapters.signatures import DevCASignatures


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LGSP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./lgsp.toml from the repository
    return tmp_path


def index(data_dir: Path) -> dict[str, dict[str, object]]:
    return json.loads((data_dir / "ca" / "index.json").read_text())  # type: ignore[no-any-return]


def test_issue_list_revoke(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "admin",
                "ca",
                "issue",
                "--user",
                "lethihoa.stp",
                "--name",
                "Lê Thị Hoa",
                "--agency-code",
                "000.00.12.H30",
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
    assert main(["admin", "ca", "issue", "--agency", "000.00.12.H30", "--name", "STP"]) == 0
    assert len(index(data_dir)) == 2
    capsys.readouterr()
    assert main(["admin", "ca", "list"]) == 0
    listed = capsys.readouterr().out
    assert serial in listed and "official" in listed and "agency" in listed
    assert main(["admin", "ca", "revoke", serial, "--reason", "key_compromise"]) == 0
    assert "revoked (key_compromise)" in capsys.readouterr().out
    assert index(data_dir)[serial]["reason"] == "key_compromise"
    assert DevCASignatures(data_dir / "ca", auto_issue=False).certificate_of("lethihoa.stp") == ""
    main(["admin", "ca", "list"])
    assert serial not in capsys.readouterr().out
    main(["admin", "ca", "list", "--all"])
    assert "REVOKED" in capsys.readouterr().out
    assert main(["admin", "ca", "revoke", serial]) == 1
    assert "already revoked" in capsys.readouterr().err
    assert main(["admin", "ca", "revoke", "abc123"]) == 1


def test_issue_for_a_user_of_the_identity_directory(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "admin",
                "create-agency",
                "000.00.12.H30",
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
                "000.00.12.H30",
                "--password",
                "Str0ng-Passw0rd!x",
            ]
        )
        == 0
    )
    user_id = capsys.readouterr().out.split("id ")[-1].strip()
    assert main(["admin", "ca", "issue", "--user", "lethihoa.stp"]) == 0
    out = capsys.readouterr().out
    assert "CN=Lê Thị Hoa" in out and "O=Sở Tư pháp" in out
    (entry,) = index(data_dir).values()
    assert entry["user_id"] == user_id and entry["agency_code"] == "000.00.12.H30"
    assert main(["admin", "ca", "issue", "--user", "nobody"]) == 1
    assert "no user nobody" in capsys.readouterr().err


def test_help_names_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["admin", "ca", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert all(word in text for word in ("issue", "revoke", "list", "<data_dir>/ca"))
