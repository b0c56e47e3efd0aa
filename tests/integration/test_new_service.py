"""`lgsp new-service`, end to end: in a copy of this checkout it makes a service from the
template, and that service runs under `lgsp up` as a real process: healthy, answering
PostNotice to a token of the identity provider it trusts, refusing a bad title with
INVALID_ARGUMENT, publishing NoticePosted on its topic, counted by `lgsp notices count`,
and stopping cleanly on SIGTERM. Bad and taken names are refused, writing nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from lgsp import cli, events
from lgsp.api.template.v1 import events_pb2, template_pb2
from lgsp.bus import open_bus
from tests.integration.test_service_process import _wait_serving
from tests.support import free_port
from tests.support.issuer import FakeIssuer

REPO = Path(__file__).resolve().parents[2]
SKIP_TOP = {".venv", "node_modules", "data"}
AGENCY = "000.00.12.H27"
# The copy's generated lgsp.api.notices.v1 is not importable here (this process's lgsp is
# this checkout's), but its messages are the template's renamed: the same bytes on the wire.
POST_NOTICE = "/lgsp.api.notices.v1.NoticesService/PostNotice"


def copy_checkout(dest: Path) -> Path:
    """This checkout's files (tracked, and new ones not ignored) copied to `dest`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = REPO / rel
        if rel.split("/", 1)[0] in SKIP_TOP or not src.is_file() or src.is_symlink():
            continue  # also a file deleted but not yet committed
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return dest


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LGSP_", "OTEL_"))}
    env["PYTHONPATH"] = str(root)
    env.update(extra)
    return env


def lgsp(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lgsp.cli", *args],
        cwd=root.parent,  # not the checkout: no ./lgsp.toml is picked up by accident
        env=env or clean_env(root),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return copy_checkout(tmp_path / "repo")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for the tests that must leave it as it was."""
    return copy_checkout(tmp_path_factory.mktemp("pristine") / "repo")


def new_service(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> tuple[int, str]:
    """`lgsp new-service … --root ROOT` in this process: (exit code, stderr)."""
    code = cli.main(["new-service", *args, "--root", str(root)])
    return code, capsys.readouterr().err


async def wait_serving(address: str, proc: asyncio.subprocess.Process, output: list[str]) -> None:
    try:
        await _wait_serving(address, proc)
    except AssertionError as e:
        raise AssertionError(f"{e}; lgsp up said:\n" + "".join(output)) from None


def bad_request_fields(error: grpc.aio.AioRpcError) -> list[str]:
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    assert isinstance(details, bytes), error
    status = status_pb2.Status.FromString(details)
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


async def test_a_new_service_runs_under_lgsp_up(checkout: Path, tmp_path: Path) -> None:
    port = free_port()
    made = await asyncio.to_thread(lgsp, checkout, "new-service", "notices", "--port", str(port))
    assert made.returncode == 0, made.stdout + made.stderr
    assert "services/notices/bootstrap.py" in made.stdout
    assert "lgsp up" in made.stdout  # the next steps
    assert f"port_field({port})" in (checkout / "services/notices/settings.py").read_text()
    assert (checkout / "lgsp/api/notices/v1/notices_pb2_grpc.py").is_file()

    issuer = FakeIssuer()
    await issuer.start()
    data = tmp_path / "data"
    env = clean_env(
        checkout,
        LGSP_PLATFORM_DATA_DIR=str(data),
        LGSP_TELEMETRY_ENABLED="false",
        LGSP_NOTICES_GRPC_PORT=str(port),
        LGSP_IDENTITY_ISSUER_BASE_URL=issuer.base_url,
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lgsp.cli",
        "up",
        "--only",
        "notices",
        "--grace",
        "5",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []

    async def pump() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            output.append(line.decode(errors="replace"))

    reader = asyncio.create_task(pump())
    try:
        address = f"127.0.0.1:{port}"
        await wait_serving(address, proc, output)
        token = (("authorization", f"Bearer {issuer.token()}"),)
        async with grpc.aio.insecure_channel(address) as ch:
            post = ch.unary_unary(
                POST_NOTICE,
                request_serializer=template_pb2.PostNoticeRequest.SerializeToString,
                response_deserializer=template_pb2.PostNoticeResponse.FromString,
            )
            reply = await post(
                template_pb2.PostNoticeRequest(agency_code=AGENCY, title="Lịch tiếp công dân"),
                metadata=token,
                timeout=10,
            )
            assert reply.notice.id
            assert reply.notice.title == "Lịch tiếp công dân"
            assert reply.notice.agency_code == AGENCY
            assert reply.notice.author_id == issuer.claims()["sub"]

            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await post(
                    template_pb2.PostNoticeRequest(agency_code=AGENCY, title="x" * 501),
                    metadata=token,
                    timeout=10,
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert bad_request_fields(refused.value) == ["title"]

            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await post(
                    template_pb2.PostNoticeRequest(agency_code=AGENCY, title="Không có thẻ"),
                    timeout=10,
                )
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

        # The relay published the event on the service's topic, in the embedded bus.
        bus = open_bus(f"sqlite:///{data}/bus.db", client_id="test")
        consumer = bus.consumer("test-new-service", ["lgsp.notices.v1"])
        try:
            received = []
            for _ in range(100):
                received += await consumer.poll(timeout=0.1)
                if received:
                    break
        finally:
            await consumer.close()
            await bus.close()
        (record,) = received
        envelope = events.decode(record.value)
        assert envelope.type == "lgsp.api.notices.v1.NoticePosted"
        assert envelope.source == "notices"
        assert events_pb2.NoticePosted.FromString(envelope.payload).notice.id == reply.notice.id

        counted = await asyncio.to_thread(lgsp, checkout, "notices", "count", env=env)
        assert counted.returncode == 0, counted.stderr
        assert counted.stdout.strip() == "1"

        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
        await reader
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        reader.cancel()
        await issuer.stop()
    text = "".join(output)
    assert proc.returncode == 0, text
    assert "still running" not in text  # stopped within its grace, not killed


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Notices", "not a service name"),
        ("my-notices", "not a service name"),
        ("my_notices", "not a service name"),
        ("2fa", "not a service name"),
        ("class", "not a service name"),
        ("bus", "the platform uses itself"),
        ("template", "the platform uses itself"),
        ("search", "exists already"),
        ("dlq", "command exists already"),
    ],
)
def test_new_service_refuses_bad_and_taken_names(
    pristine: Path, capsys: pytest.CaptureFixture[str], name: str, why: str
) -> None:
    before = sorted(p.name for p in (pristine / "services").iterdir())
    code, err = new_service(capsys, pristine, name)
    assert code == 2, err
    assert why in err
    assert sorted(p.name for p in (pristine / "services").iterdir()) == before


def test_new_service_refuses_a_taken_port_and_a_root_without_the_template(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = new_service(capsys, pristine, "notices", "--port", "50054")
    assert code == 2 and "search.grpc_port" in err
    code, err = new_service(capsys, tmp_path, "notices")
    assert code == 2 and "not an LGSP checkout" in err
    assert not (pristine / "services" / "notices").exists()
