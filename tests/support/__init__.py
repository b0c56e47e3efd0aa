"""Stand-ins shared by the tests and the benchmarks (never imported by a service at run time):
a token issuer (`issuer.FakeIssuer`) and a minimal PDF (`pdf.minimal_pdf`)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
