"""A command facing a server that is down says so in one line and exits non-zero, quickly:
no traceback, no half-minute wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]


def lgsp(tmp_path: Path, *args: str, env: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LGSP_", "OTEL_"))}
    base.update(
        {
            "PYTHONPATH": str(REPO),
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path / "data"),
            "LGSP_IDENTITY_HTTP_PORT": str(free_port()),
            **env,
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "lgsp.cli", *args],
        env=base,
        cwd=tmp_path,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("args", "env", "stdin", "says"),
    [
        (
            ("dlq", "list"),
            {"LGSP_BUS_URL": f"kafka://127.0.0.1:{free_port()}"},
            "",
            "lgsp dlq: event bus: ",
        ),
        (
            ("search", "cải cách", "--username", "thaoln.ubnd", "--password-stdin"),
            {},
            "secret\n",
            "lgsp search: cannot reach http://127.0.0.1:",
        ),
        (
            ("member", "list"),
            {"LGSP_GATEWAY_DATABASE_URL": f"postgresql+psycopg://lgsp@127.0.0.1:{free_port()}/x"},
            "",
            "lgsp member: database: ",
        ),
        (
            ("documents", "ca", "issue", "--user", "nobody"),
            {"LGSP_IDENTITY_GRPC_PORT": str(free_port())},
            "",
            "lgsp documents ca: cannot ask identity at 127.0.0.1:",
        ),
    ],
    ids=["broker down", "identity down", "database down", "identity gRPC down"],
)
def test_a_server_that_is_down_is_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], stdin: str, says: str
) -> None:
    started = time.monotonic()
    code, out, err = lgsp(tmp_path, *args, env=env, stdin=stdin)
    took = time.monotonic() - started
    assert code != 0
    lines = err.strip().splitlines()
    # The error is one line, last; a command may have said what it was doing before it.
    assert lines[-1].startswith(says) and len(lines) <= 4, err
    assert "Traceback" not in out + err
    assert took < 20  # the broker case took 35 s before


def test_the_traceback_is_there_when_asked(tmp_path: Path) -> None:
    code, _, err = lgsp(
        tmp_path,
        "dlq",
        "list",
        env={"LGSP_BUS_URL": f"kafka://127.0.0.1:{free_port()}", "LGSP_TRACEBACK": "1"},
    )
    assert code != 0 and "Traceback" in err and "BusError" in err
