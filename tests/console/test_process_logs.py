"""`python -m console` logs as every process of the platform does (lgsp.logs): its own lines
(operators signing in and out, replays, refused spans) are written, as JSON under
LGSP_LOG_FORMAT=json, and uvicorn's per-request access lines are held at the third-party
level (WARNING) like every other library's."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lgsp.config import load_settings
from lgsp.runner import Component, component_env
from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]


def test_the_console_process_writes_its_own_lines_as_json_and_no_access_lines(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = load_settings(
        env={
            "LGSP_PLATFORM_DATA_DIR": str(tmp_path),
            "LGSP_CONSOLE_PORT": str(port),
            "LGSP_PLATFORM_LOG_FORMAT": "json",
        }
    )
    env = component_env(settings, Component("console", "console", "console", REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "console"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz").is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "console did not start"
            time.sleep(0.1)
        assert httpx.get(f"{base}/traces").status_code == 401  # no session; an access line
        refused = httpx.post(f"{base}/v1/traces", content=b"x", headers={"x-lgsp-otlp-token": "no"})
        assert refused.status_code == 401
        time.sleep(0.5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert any("refused spans from" in r["msg"] for r in records), out  # its own warning
    assert all(r["service"] == "console" for r in records)
    others = [line for line in out.splitlines() if not line.startswith("{")]
    assert others == [f"operator console on {base}/"], others  # the one start-up line, printed
    assert not any(r["logger"].startswith("uvicorn") for r in records)  # at WARNING, like libraries
