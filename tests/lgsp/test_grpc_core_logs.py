"""gRPC's C core logs beside Python's logging, straight to stderr and not as JSON: at its
default verbosity a TLS listener writes an INFO line for every client that fails the
handshake (a port scan, a client without the CA), so the runner quiets it like the other
third-party loggers (`[platform] third_party_log_level`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lgsp import tls
from lgsp.config import load_settings
from lgsp.runner import Component, component_env

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = Component("documents", "service", "services.documents", REPO)

# A TLS gRPC server, then a client speaking plain HTTP to it: a failed handshake.
SERVER = """
import socket, sys, time
from concurrent import futures
import grpc
key, cert = (open(p, "rb").read() for p in sys.argv[1:3])
server = grpc.server(futures.ThreadPoolExecutor(1))
port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
server.start()
c = socket.create_connection(("127.0.0.1", port))
c.sendall(b"GET / HTTP/1.1\\r\\n\\r\\n")
c.recv(10)
c.close()
time.sleep(0.3)
server.stop(0)
"""


def _stderr_of_a_failed_handshake(tmp_path: Path, **env: str) -> str:
    settings = load_settings(
        env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path), "LGSP_TLS_ENABLED": "true", **env}
    )
    files = tls.files(settings)
    run = subprocess.run(
        [sys.executable, "-c", SERVER, str(files.key_file), str(files.cert_file)],
        env=component_env(settings, DOCUMENTS, base={}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stderr


def test_a_failed_tls_handshake_writes_no_line_by_default(tmp_path: Path) -> None:
    assert "Handshake failed" not in _stderr_of_a_failed_handshake(tmp_path)


def test_the_third_party_level_lowers_it_and_the_operators_own_setting_wins(
    tmp_path: Path,
) -> None:
    loud = _stderr_of_a_failed_handshake(tmp_path, LGSP_PLATFORM_THIRD_PARTY_LOG_LEVEL="DEBUG")
    assert "Handshake failed" in loud  # the same run does show it when asked to
    settings = load_settings(env={"LGSP_PLATFORM_DATA_DIR": str(tmp_path)})
    env = component_env(settings, DOCUMENTS, base={"GRPC_VERBOSITY": "INFO"})
    assert env["GRPC_VERBOSITY"] == "INFO"
