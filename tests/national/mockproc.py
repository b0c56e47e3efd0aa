"""Run a national mock as a real process on a free loopback port, and steer it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures import free_port

REPO = Path(__file__).resolve().parents[2]
API_KEY = "test-key"


class MockProcess:
    def __init__(self, name: str, data_dir: Path, *extra: str) -> None:
        self.name = name
        self.data_dir = data_dir
        self.extra = extra
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> MockProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LGSP_", "NATIONAL_"))}
        env.update(OTEL_SDK_DISABLED="true", PYTHONPATH=str(REPO), LGSP_LOG_FORMAT="text")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"national.{self.name}",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                "--api-key",
                API_KEY,
                *self.extra,
            ],
            cwd=str(self.data_dir),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {err}")
            try:
                httpx.get(f"{self.url}/healthz", timeout=0.5)  # any answer: it listens
                return self
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not start in {timeout}s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self.url}/_faults", json=faults, timeout=2).raise_for_status()

    def calls(self) -> int:
        return int(httpx.get(f"{self.url}/_stats", timeout=2).json()["total"])

    def reset(self) -> None:
        self.faults()
        httpx.post(f"{self.url}/_stats/reset", timeout=2).raise_for_status()

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": API_KEY}, timeout=5)
