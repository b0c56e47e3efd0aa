"""TLS on every listener, from the [tls] settings section.

Off by default: `make run` stays plain on loopback. Enabled, every gRPC port, the console's
HTTP port (with its OTLP receiver), the services' HTTP pages, the metrics ports and the
national mocks serve TLS with one server certificate:

- `cert_file`/`key_file` set: the province's own (issued by its CA; `ca_file` is that CA, or
  "" for the system's trust store);
- not set: the development CA (lgsp.ca, the one documents and mail sign with) issues one into
  <data_dir>/tls/ for every name a client may dial (`server_hosts`), renewed when it nears
  its end or a name is missing; clients trust <data_dir>/tls/ca.pem, the CA's root.

The gRPC halves are lgsp.grpc.server.server_credentials and lgsp.grpc.client
.channel_credentials; this module holds the files, the checks and the HTTP halves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

if TYPE_CHECKING:
    from lgsp.config import Settings

__all__ = [
    "TlsFiles",
    "UvicornSsl",
    "client_ssl_context",
    "files",
    "https_verify",
    "public_roots",
    "server_hosts",
    "tls_problems",
    "trust_env",
    "uvicorn_ssl",
]

TLS_DIR = "tls"
CERT_NAME, KEY_NAME, CA_NAME, TRUST_NAME = "server.pem", "server.key.pem", "ca.pem", "trust.pem"
RENEW_BEFORE = dt.timedelta(days=30)
VALID_DAYS = 365

_lock = threading.Lock()
_cache: dict[tuple[str, tuple[str, ...]], TlsFiles] = {}


# The scheme a listener is reached with under [tls] enabled (mail's SMTP and IMAP ports stay
# as they are: STARTTLS on the plain ports, IMAPS its own).
TLS_SCHEMES = {"http": "https", "grpc": "grpcs"}


def scheme(settings: Settings, protocol: str) -> str:
    """How an endpoint of `protocol` is written for people: https and grpcs under TLS."""
    return TLS_SCHEMES.get(protocol, protocol) if settings.tls.enabled else protocol


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files one process serves and verifies with."""

    cert_file: Path  # the server certificate, then its intermediates
    key_file: Path
    ca_file: Path | None  # what clients trust; None = the system's trust store

    def ca_pem(self) -> bytes | None:
        return self.ca_file.read_bytes() if self.ca_file else None


def server_hosts(settings: Settings) -> list[str]:
    """The names the issued certificate covers: loopback, platform.host, this machine's name,
    each component's name (a container per component is reached by it), the host of each
    configured peer address (`[<service>] address`) and [tls] hosts."""
    from lgsp.netaddr import parse_addresses

    hosts = ["127.0.0.1", "::1", "localhost"]
    if settings.platform.host not in ("", "0.0.0.0", "::"):
        hosts.append(settings.platform.host)
    hosts.append(socket.gethostname())
    components = dict.fromkeys(e.component for e in settings.endpoints())
    hosts += [c.replace("_", "-") for c in components]
    hosts += settings.peer_hosts()
    hosts += parse_addresses(settings.tls.hosts)
    return list(dict.fromkeys(h.lower() for h in hosts if h))


def files(settings: Settings) -> TlsFiles:
    """The configured files, or the development CA's issued ones (issued on first use)."""
    t = settings.tls
    if t.cert_file:
        return TlsFiles(Path(t.cert_file), Path(t.key_file), Path(t.ca_file) if t.ca_file else None)
    directory = settings.data_dir / TLS_DIR
    hosts = tuple(server_hosts(settings))
    key = (str(directory), hosts)
    with _lock:
        found = _cache.get(key)
        if found is None or _needs_renewal(found.cert_file, hosts):
            found = _cache[key] = _issued(settings.data_dir, directory, hosts)
    return found


def _issued(data_dir: Path, directory: Path, hosts: tuple[str, ...]) -> TlsFiles:
    from lgsp.ca import DevCA

    out = TlsFiles(directory / CERT_NAME, directory / KEY_NAME, directory / CA_NAME)
    directory.mkdir(parents=True, exist_ok=True)
    with _flocked(directory):  # several processes start at once under `lgsp up`
        if not _needs_renewal(out.cert_file, hosts):
            return out
        ca = DevCA.open_or_create(data_dir / "ca")
        credential = ca.issue_server(list(hosts), valid_days=VALID_DAYS)
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in credential.chain)
        # Each file is replaced whole (rename), never seen half-written.
        _write(out.key_file, credential.key_pem(), 0o600)
        _write(out.cert_file, credential.cert_pem() + chain, 0o644)
        _write(directory / CA_NAME, ca.root_pem(), 0o644)
    return out


def _needs_renewal(cert_file: Path, hosts: tuple[str, ...]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return True
    covered = {str(v).lower() for v in san.get_values_for_type(x509.DNSName)}
    covered |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
    ends = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    # This machine's name is added when issuing but not required: containers sharing one
    # data directory each have their own, and would otherwise take turns reissuing.
    required = {_canonical(h) for h in hosts} - {socket.gethostname().lower()}
    return ends < RENEW_BEFORE or not required <= covered


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


@contextlib.contextmanager
def _flocked(directory: Path) -> Iterator[None]:
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- HTTP halves -------------------------------------------------------------------------------


class UvicornSsl(TypedDict, total=False):
    ssl_certfile: str
    ssl_keyfile: str


def uvicorn_ssl(settings: Settings) -> UvicornSsl:
    """uvicorn.Config's (and MetricsServer's) ssl_certfile/ssl_keyfile when TLS is on, else
    nothing: the HTTP halves of every listener."""
    if not settings.tls.enabled:
        return {}
    f = files(settings)
    return {"ssl_certfile": str(f.cert_file), "ssl_keyfile": str(f.key_file)}


def public_roots(avoid: Path | None = None) -> Path:
    """The roots trusted besides the platform's CA: the operator's SSL_CERT_FILE, else the
    system's bundle (a province's own roots live there), else certifi's (httpx's default)."""
    import certifi

    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile):
        if candidate and Path(candidate).is_file() and Path(candidate) != avoid:
            return Path(candidate)
    return Path(certifi.where())


def client_ssl_context(settings: Settings) -> ssl.SSLContext:
    """An SSL context for HTTPS clients (httpx `verify=`): the public roots plus the
    platform's CA when TLS is on."""
    context = ssl.create_default_context(cafile=str(public_roots()))
    if settings.tls.enabled:
        ca = files(settings).ca_file
        if ca is not None:
            context.load_verify_locations(cafile=str(ca))
    return context


def https_verify(settings: Settings) -> ssl.SSLContext | bool:
    """httpx's `verify=` for a client of the platform's own HTTPS (identity's token and key
    endpoints…): client_ssl_context when TLS is on, else httpx's default."""
    return client_ssl_context(settings) if settings.tls.enabled else True


def trust_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process trust the platform's CA without code: httpx
    reads SSL_CERT_FILE, requests (python-keycloak, the OTLP exporter) REQUESTS_CA_BUNDLE.
    The exporter is also given OTEL_EXPORTER_OTLP_CERTIFICATE, but requests lets a
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE already in the environment (as on many hosts and
    images) win over it. Both variables replace the default roots, so they name a bundle:
    the public roots + the CA, in <data_dir>/tls/trust.pem."""
    f = files(settings)
    if f.ca_file is None:
        return {}
    bundle = f.ca_file.with_name(TRUST_NAME)
    data = public_roots(avoid=bundle).read_bytes() + b"\n" + f.ca_file.read_bytes()
    if not bundle.is_file() or bundle.read_bytes() != data:
        _write(bundle, data, 0o644)
    return {
        "SSL_CERT_FILE": str(bundle),
        "REQUESTS_CA_BUNDLE": str(bundle),
        "OTEL_EXPORTER_OTLP_CERTIFICATE": str(f.ca_file),
    }


# --- settings checks ---------------------------------------------------------------------------


def tls_problems(settings: Settings) -> list[tuple[str, str]]:
    """(key, message) for [tls] files that cannot work; checked at load, so a bad file stops
    start-up with its name instead of every process failing its first handshake."""
    t = settings.tls
    if not t.enabled:
        given = [k for k in ("cert_file", "key_file", "ca_file", "hosts") if getattr(t, k)]
        return [(k, "TLS is off: set tls.enabled = true to use it") for k in given[:1]]
    if bool(t.cert_file) != bool(t.key_file):
        return [
            (
                "cert_file" if not t.cert_file else "key_file",
                "set both tls.cert_file and tls.key_file, or neither (the development CA "
                "then issues a certificate into <data_dir>/tls/)",
            )
        ]
    if t.ca_file and not t.cert_file:
        return [("ca_file", "tls.ca_file is only read with your own cert_file and key_file")]
    if not t.cert_file:
        return []
    problems: list[tuple[str, str]] = []
    data: dict[str, bytes] = {}
    for name in ("cert_file", "key_file", "ca_file"):
        path = getattr(t, name)
        if not path:
            continue
        try:
            data[name] = Path(path).read_bytes()
        except OSError as exc:
            problems.append((name, f"cannot read {path!r}: {exc.strerror or exc}"))
    if problems:
        return problems
    try:
        chain = x509.load_pem_x509_certificates(data["cert_file"])
    except ValueError:
        return [("cert_file", f"{t.cert_file!r} holds no PEM certificate")]
    cert = chain[0]
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now:
        problems.append(
            (
                "cert_file",
                f"certificate {t.cert_file!r} expired on {cert.not_valid_after_utc:%Y-%m-%d}",
            )
        )
    elif cert.not_valid_before_utc > now:
        problems.append(
            (
                "cert_file",
                f"certificate {t.cert_file!r} is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
            )
        )
    try:
        private = serialization.load_pem_private_key(data["key_file"], password=None)
    except (ValueError, TypeError):
        problems.append(("key_file", f"{t.key_file!r} holds no unencrypted PEM private key"))
    else:
        if private.public_key() != cert.public_key():
            problems.append(
                ("key_file", f"{t.key_file!r} is not the key of certificate {t.cert_file!r}")
            )
    if "ca_file" in data:
        problems += _chain_problems(chain, data["ca_file"], t.cert_file, t.ca_file)
    return problems


def _chain_problems(
    chain: list[x509.Certificate], ca_pem: bytes, cert_file: str, ca_file: str
) -> list[tuple[str, str]]:
    try:
        anchors = x509.load_pem_x509_certificates(ca_pem)
    except ValueError:
        return [("ca_file", f"{ca_file!r} holds no PEM certificate")]
    current, rest = chain[0], chain[1:]
    for _ in range(len(chain) + 1):
        if any(_issued_by(current, a) for a in anchors):
            return []
        parent = next((c for c in rest if _issued_by(current, c)), None)
        if parent is None:
            break
        current = parent
    return [
        (
            "ca_file",
            f"certificate {cert_file!r} is not issued by a CA in {ca_file!r}: clients "
            "trusting it would refuse every connection",
        )
    ]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
