"""Stand-ins shared by the tests and the benchmarks (never imported by a service at run time):
a token issuer (`issuer.FakeIssuer`) and a minimal PDF (`pdf.minimal_pdf`)."""

from __future__ import annotations

import functools
import os
import random
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, that is no setting's default
    port (the settings' cross-check refuses, say, 50053 beside dossiers' own default), and that
    this process was not handed before (a test takes several ports before anything binds them).

    Drawn below the kernel's ephemeral range (32768-60999 on Linux), so a port picked here is
    never the one the kernel gives some other socket's bind(0) or connect() meanwhile; under
    pytest-xdist each worker draws only its own residue class, so workers never race for one."""
    count, index = _worker()
    while True:
        port = random.randrange(_LOW + index, _HIGH, count)
        if port in _default_ports() or port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use
        _handed_out.add(port)
        return port


# Test ports: above the well-known servers' (PostgreSQL, Redis, RabbitMQ, NATS… run here),
# below the kernel's ephemeral range.
_LOW, _HIGH = 20000, 32768
_handed_out: set[int] = set()


def _worker() -> tuple[int, int]:
    """(workers, this worker's index) under pytest-xdist; (1, 0) in a plain run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count <= 1:
        return 1, 0
    return count, int(worker[2:]) % count


@functools.cache
def _default_ports() -> frozenset[int]:
    from lgsp.config import load_settings

    settings = load_settings(env={})
    return frozenset(e.port for e in settings.endpoints())
