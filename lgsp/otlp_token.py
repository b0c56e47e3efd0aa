"""The per-installation token that lets a process export spans to the operator console.

The console's OTLP receiver takes spans only from the platform's own processes. Each of them
sends this token in the `x-lgsp-otlp-token` header (OTEL_EXPORTER_OTLP_HEADERS, set by
Settings.process_env); the console compares it in constant time. The token is 256 random bits
in <data_dir>/console-otlp.token (mode 0600, created on first use), so whoever can read it can
already read every database in the data directory; on the scale-out stack, where processes do
not share a data directory, `console.otlp_token` gives the same value to every container.
A token works where a loopback-only listener would not (one container per component) and needs
no client certificates in the OpenTelemetry exporters.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from pathlib import Path

HEADER = "x-lgsp-otlp-token"
FILE_NAME = "console-otlp.token"


def installation_token(data_dir: str | Path, configured: str = "", name: str = FILE_NAME) -> str:
    """`configured` if set, else the secret in <data_dir>/`name`, created if missing."""
    if configured:
        return configured
    path = Path(data_dir) / name
    with contextlib.suppress(FileNotFoundError):
        existing = path.read_text().strip()
        if existing:
            return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    tmp = path.with_name(f".{name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    try:
        os.link(tmp, path)  # first writer wins; a concurrent starter reads the winner's
    except FileExistsError:
        token = path.read_text().strip()
    finally:
        tmp.unlink()
    return token


def matches(presented: str | None, token: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), token.encode())
