"""`python -m lgsp.healthcheck [NAME…]`: the container image's HEALTHCHECK.

Healthy when every socket the named components listen on (their settings' endpoints)
accepts a connection on this host, and each gRPC one answers the standard health check
SERVING. Without names, the components are read from PID 1's command line — the image runs
one component per container (`lgsp run NAME` execs `python -m services.NAME`) or `lgsp up`
(every component, or those after --only) — so one HEALTHCHECK line fits every container.
Exit code 0 when healthy, 1 with one line per failing socket otherwise.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lgsp.config import Endpoint, load_settings

TIMEOUT_S = 3.0
PACKAGES = ("services.", "national.")


def components_of(argv: Sequence[str]) -> list[str] | None:
    """The components a command line runs; None for every one (`lgsp up`), [] if not LGSP."""
    args = list(argv)
    if "-m" in args[:-1]:
        module = args[args.index("-m") + 1]
        if module == "console":
            return ["console"]
        return [module.removeprefix(p) for p in PACKAGES if module.startswith(p)][:1]
    words = [Path(a).name for a in args]
    if "run" in words[:-1]:
        return [args[words.index("run") + 1]]
    if "up" in words:
        only = args[args.index("--only") + 1 :] if "--only" in args else []
        return [a for a in only if not a.startswith("-")] or None
    return []


def pid1_argv() -> list[str]:
    raw = Path("/proc/1/cmdline").read_bytes()
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def problem(endpoint: Endpoint, timeout_s: float = TIMEOUT_S) -> str | None:
    """Why `endpoint` (probed on loopback when it listens on every address) is unhealthy."""
    host = "127.0.0.1" if endpoint.host in ("", "0.0.0.0", "::") else endpoint.host.strip("[]")
    try:
        socket.create_connection((host, endpoint.port), timeout=timeout_s).close()
    except OSError as exc:
        return f"{endpoint.component} {endpoint.protocol} {host}:{endpoint.port}: {exc}"
    if endpoint.protocol != "grpc":
        return None
    target = f"[{host}]:{endpoint.port}" if ":" in host else f"{host}:{endpoint.port}"
    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            return f"{endpoint.component} gRPC health {target}: {exc.code().name}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return f"{endpoint.component} gRPC health {target}: {status}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    names: list[str] | None = list(sys.argv[1:] if argv is None else argv)
    if not names:
        names = components_of(pid1_argv())
        if names == []:
            print("healthcheck: PID 1 runs no LGSP component; name one", file=sys.stderr)
            return 1
    settings = load_settings()
    endpoints = [e for e in settings.endpoints() if names is None or e.component in names]
    if names is not None and not endpoints:
        print(f"healthcheck: no endpoints for {', '.join(names)}", file=sys.stderr)
        return 1
    problems = [p for p in map(problem, endpoints) if p]
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
