"""Stand-ins shared by the tests and the benchmarks (never imported by a service at run time):
a token issuer (`issuer.FakeIssuer`) and a minimal PDF (`pdf.minimal_pdf`)."""

from __future__ import annotations

import functools
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, and that is no setting's
    default port (the kernel may hand out 50053, say, which the settings' cross-check then
    refuses beside dossiers' own default gRPC port), nor one this process was handed before:
    a test takes several ports before anything binds them, and the kernel may give the same
    free port twice (the settings' cross-check then refuses two components on one port)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _default_ports() and port not in _handed_out:
            _handed_out.add(port)
            return port


_handed_out: set[int] = set()


@functools.cache
def _default_ports() -> frozenset[int]:
    from lgsp.config import load_settings

    settings = load_settings(env={})
    return frozenset(e.port for e in settings.endpoints())
