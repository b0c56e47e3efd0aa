"""`lgsp mail …` over a data directory the running service filled: mailboxes with usage,
one mailbox in detail, the outgoing queue, the S/MIME certificate exported as PKCS#12 (read
back with cryptography and openssl); refusals with exit code 1 and the reason on stderr."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from lgsp.api.mail.v1 import mail_pb2 as pb
from lgsp.ca import certificate_emails
from lgsp.cli import main
from tests.fixtures import missing_server
from tests.services.mail.env import HEALTH, JUSTICE, MailEnv, mail_env

ROOT = Path(__file__).resolve().parents[3]


async def filled(tmp_path: Path) -> tuple[str, str]:
    """Two officials, a signed message between them, three queued for outside."""
    async with mail_env(tmp_path) as env:
        an = env.add_official("u-an", "Nguyễn Văn An", JUSTICE)
        binh = env.add_official("u-binh", "Trần Thị Bình", HEALTH)
        await send(env, an, [binh, "a@example.org", "b@example.org", "c@gmail.com"])
    return an, binh


async def send(env: MailEnv, sender: str, to: list[str]) -> None:
    request = pb.SendMessageRequest(
        mailbox_address=sender,
        to=[pb.Address(address=a) for a in to],
        subject="Báo cáo tháng",
        text_body="Nội dung báo cáo." * 1000,
        sign=True,
    )
    await env.stub().SendMessage(request, metadata=env.md("u-an"))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LGSP_PLATFORM_DATA_DIR", str(tmp_path))
    return tmp_path


def test_mailboxes_show_and_queue(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    an, binh = asyncio.run(filled(data_dir))
    assert main(["mail", "mailboxes"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [an, binh]
    assert "personal" in lines[0] and "active" in lines[0] and "Nguyễn Văn An" in lines[0]
    assert " KiB / 2048.0 MiB (0%)" in lines[0] and "2 mailbox(es)" in err
    assert main(["mail", "mailboxes", "--agency", HEALTH, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["mailboxes"]
    assert [m["address"] for m in listed] == [binh] and listed[0]["used_bytes"] > 17000

    assert main(["mail", "show", an.upper()]) == 0
    out = capsys.readouterr().out
    assert f"address       {an}" in out and "owner         u-an (u-an.test)" in out
    assert "      1 messages       0 unread  [Sent]" in out
    assert "S/MIME cert   " in out and "none yet" not in out  # issued by the signed send
    assert main(["mail", "show", binh]) == 0
    assert "      1 messages       1 unread  [INBOX]" in capsys.readouterr().out

    assert main(["mail", "show", "khongco@stp.hatinh.gov.vn"]) == 1
    assert capsys.readouterr().err == "lgsp mail: no mailbox khongco@stp.hatinh.gov.vn\n"
    assert main(["mail", "show", "not an address"]) == 1
    assert "not an address" in capsys.readouterr().err

    assert main(["mail", "queue"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 message(s) queued for outside recipients\noldest queued ")
    assert out.index("example.org") < out.index("gmail.com")  # most waiting first
    assert main(["mail", "queue", "--json"]) == 0
    queue = json.loads(capsys.readouterr().out)
    assert queue["count"] == 3
    assert [(d["domain"], d["count"]) for d in queue["domains"]] == [
        ("example.org", 2),
        ("gmail.com", 1),
    ]


def test_cert_export_writes_a_pkcs12_mail_clients_import(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    an, _ = asyncio.run(filled(data_dir))
    out = data_dir / "an.p12"

    def export(password: str, *extra: str) -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        return main(["mail", "cert", "export", "--user", "u-an.test", "--out", str(out), *extra])

    assert export("ngan") == 1  # too short
    assert "at least 8 characters" in capsys.readouterr().err and not out.exists()
    assert export("Mat-khau-p12!") == 0
    assert f"for {an}" in capsys.readouterr().out
    assert out.stat().st_mode & 0o777 == 0o600
    key, cert, chain = pkcs12.load_key_and_certificates(out.read_bytes(), b"Mat-khau-p12!")
    assert key is not None and cert is not None and len(chain) == 1
    assert certificate_emails(cert) == {an}
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(out.read_bytes(), b"sai-mat-khau")
    assert export("Mat-khau-p12!") == 1  # no overwrite without --force
    assert "--force" in capsys.readouterr().err
    assert export("Mat-khau-p12!", "--force") == 0
    capsys.readouterr()

    if shutil.which("openssl") is None:
        missing_server("openssl not installed")
    shown = subprocess.run(
        ["openssl", "pkcs12", "-in", str(out), "-passin", "pass:Mat-khau-p12!", "-nokeys"],
        capture_output=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert an.encode() in shown.stdout and shown.stdout.count(b"BEGIN CERTIFICATE") == 2

    monkeypatch.setattr(sys, "stdin", io.StringIO("Mat-khau-p12!\n"))
    assert main(["mail", "cert", "export", "--user", "u-ai", "--out", str(data_dir / "x")]) == 1
    assert "no official 'u-ai'" in capsys.readouterr().err


def test_cert_export_without_auto_issue_needs_an_issued_certificate(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def one_official() -> None:
        async with mail_env(data_dir) as env:
            env.add_official("u-binh", "Trần Thị Bình", HEALTH)

    asyncio.run(one_official())
    monkeypatch.setenv("LGSP_MAIL_SMIME_AUTO_ISSUE", "false")
    monkeypatch.setattr(sys, "stdin", io.StringIO("Mat-khau-p12!\n"))
    out = data_dir / "binh.p12"
    assert main(["mail", "cert", "export", "--user", "u-binh", "--out", str(out)]) == 1
    assert "lgsp documents ca issue --user u-binh.test --email binhtt@" in capsys.readouterr().err
    assert not out.exists()


def test_the_lgsp_command_runs_the_group(data_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LGSP_PLATFORM_DATA_DIR": str(data_dir)}

    def lgsp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lgsp.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=60,
        )

    done = lgsp("mail", "queue", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"count": 0, "oldest": "", "domains": []}
    usage = lgsp("mail")
    assert usage.returncode == 2 and "the following arguments are required: ACTION" in usage.stderr
    helped = lgsp("mail", "cert", "export", "--help")
    assert helped.returncode == 0 and "Thunderbird" in helped.stdout
