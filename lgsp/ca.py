"""A development certificate authority standing in for the government CA (Ban Cơ yếu Chính phủ).

Shared by the services that sign for officials: documents (PAdES) and mail (S/MIME).

Root → intermediate → end-entity certificates for officials and agencies, all persisted under
one directory so `lgsp documents ca issue/revoke` and the services see the same CA:

    <dir>/root.pem, root.key.pem            self-signed root (the trust anchor verifiers load)
    <dir>/intermediate.pem, .key.pem        issues every end-entity certificate
    <dir>/issued/<serial>.pem, .p12         each issued certificate (and its key, for dev signing)
    <dir>/crl/root.crl, intermediate.crl    CRLs (DER), rewritten on every revocation
    <dir>/index.json                        serial → subject, kind, revocation

Keys are RSA-2048 like the certificates of the national CA; private keys are stored unencrypted
(0600) because this is a development CA. Never use it for real documents.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lgsp.agency_code import validate_agency_code

CRL_VALIDITY = dt.timedelta(days=7)
# Nothing serves this by default (.invalid never resolves); see open_or_create.
DEFAULT_CRL_BASE_URL = "http://ca.lgsp.invalid/crl/"
CRL_REFRESH_BEFORE = dt.timedelta(days=2)

# RFC 5280 CRLReason names accepted by revoke().
REVOCATION_REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key_compromise": x509.ReasonFlags.key_compromise,
    "affiliation_changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation_of_operation": x509.ReasonFlags.cessation_of_operation,
    "certificate_hold": x509.ReasonFlags.certificate_hold,
}


_ISSUING = threading.Lock()


def certificate_emails(cert: x509.Certificate) -> set[str]:
    """The mail addresses a certificate names (SAN rfc822Name, subject emailAddress), lower."""
    found = {
        str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    }
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found |= {e.lower() for e in san.get_values_for_type(x509.RFC822Name)}
    except x509.ExtensionNotFound:
        pass
    return found


class CAError(ValueError):
    """A CA operation cannot be done (unknown serial, already revoked, bad subject…)."""


@dataclass(frozen=True)
class Credential:
    """An issued certificate with its private key and the chain up to (not including) root."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def serial(self) -> str:
        return format(self.certificate.serial_number, "x")

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def pkcs12(self, password: bytes | None = None, name: str | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            (name or self.serial).encode(),
            self.private_key,
            self.certificate,
            list(self.chain),
            encryption,
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # readers (verifiers) never see a half-written CRL


class DevCA:
    """The development CA in `directory`. Use `DevCA.open_or_create(dir)`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        config = json.loads((directory / "ca.json").read_text())
        self.crl_base_url: str = config["crl_base_url"]
        self.root_cert = self._load_cert("root.pem")
        self.root_key = self._load_key("root.key.pem")
        self.intermediate_cert = self._load_cert("intermediate.pem")
        self.intermediate_key = self._load_key("intermediate.key.pem")

    # --- life cycle ---------------------------------------------------------------------------

    @classmethod
    def open_or_create(
        cls,
        directory: str | Path,
        *,
        name: str = "LGSP Development Root CA",
        crl_base_url: str = DEFAULT_CRL_BASE_URL,
    ) -> DevCA:
        """Open the CA in `directory`, creating root and intermediate on first use.

        `crl_base_url` is where <dir>/crl/ is served over HTTP; certificates name
        `<crl_base_url>intermediate.crl` (root.crl for the intermediate) as their CRL
        distribution point, which is how outside validators find revocation. It is fixed when
        the CA is created. Our own verifier reads the CRL files and never fetches.
        """
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            if not (path / "root.pem").exists():
                _create(path, name, crl_base_url)
            ca = cls(path)
            ca._refresh_crls_if_stale()
        return ca

    def _load_cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.directory / name).read_bytes())

    def _load_key(self, name: str) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(
            (self.directory / name).read_bytes(), password=None
        )
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    # --- issuing ------------------------------------------------------------------------------

    def issue_official(
        self,
        *,
        full_name: str,
        agency_name: str,
        agency_code: str,
        email: str = "",
        unit: str = "",
        user_id: str = "",
        valid_days: int = 365,
        not_before: dt.datetime | None = None,
    ) -> Credential:
        """A signing certificate for an official: CN full name, O agency, OU unit, E email."""
        if not full_name.strip():
            raise CAError("full_name is required")
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency_name)]
        if unit:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, agency_code))
        if user_id:
            attrs.append(x509.NameAttribute(NameOID.USER_ID, user_id))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, full_name))
        if email:
            attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
        return self._issue(
            "official", agency_code, x509.Name(attrs), email, valid_days, not_before, user_id
        )

    def issue_agency(
        self,
        *,
        agency_name: str,
        agency_code: str,
        email: str = "",
        valid_days: int = 3 * 365,
        not_before: dt.datetime | None = None,
    ) -> Credential:
        """An agency's own certificate (for the agency seal / system signatures)."""
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency_name),
                x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, agency_code),
                x509.NameAttribute(NameOID.COMMON_NAME, agency_name),
            ]
        )
        return self._issue("agency", agency_code, name, email, valid_days, not_before)

    def _issue(
        self,
        kind: str,
        agency_code: str,
        subject: x509.Name,
        email: str,
        valid_days: int,
        not_before: dt.datetime | None,
        user_id: str = "",
    ) -> Credential:
        try:
            validate_agency_code(agency_code)
        except ValueError as exc:
            raise CAError(str(exc)) from None
        key = _new_key()
        builder = self._leaf(
            subject,
            key,
            valid_days,
            not_before,
            usage={"content_commitment": True},  # non-repudiation: signatures on documents
            purposes=[ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH],
        )
        builder = builder.add_extension(
            _crl_distribution_point(f"{self.crl_base_url}intermediate.crl"), critical=False
        )
        if email:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False
            )
        cert = builder.sign(self.intermediate_key, hashes.SHA256())
        credential = Credential(cert, key, (self.intermediate_cert,))
        with _locked(self.directory):
            issued = self.directory / "issued"
            issued.mkdir(exist_ok=True)
            _write_public(issued / f"{credential.serial}.pem", credential.cert_pem())
            _write_private(issued / f"{credential.serial}.p12", credential.pkcs12())
            self._record(credential, kind, agency_code, user_id)
        return credential

    def issue_server(
        self, hosts: list[str], *, valid_days: int = 365, not_before: dt.datetime | None = None
    ) -> Credential:
        """A TLS server certificate for the platform's listeners (lgsp.tls): `hosts` are its
        subject alternative names (IP addresses or DNS names); client auth too, for mTLS."""
        if not hosts:
            raise CAError("a server certificate needs at least one host name")
        names: list[x509.GeneralName] = []
        for host in dict.fromkeys(hosts):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        key = _new_key()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LGSP (development only)"),
                x509.NameAttribute(NameOID.COMMON_NAME, hosts[0]),
            ]
        )
        cert = (
            self._leaf(
                subject,
                key,
                valid_days,
                not_before,
                usage={"key_encipherment": True},
                purposes=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            )
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(self.intermediate_key, hashes.SHA256())
        )
        credential = Credential(cert, key, (self.intermediate_cert,))
        with _locked(self.directory):
            self._record(credential, "server", "", "")
        return credential

    def _leaf(
        self,
        subject: x509.Name,
        key: rsa.RSAPrivateKey,
        valid_days: int,
        not_before: dt.datetime | None,
        *,
        usage: dict[str, bool],
        purposes: list[x509.ObjectIdentifier],
    ) -> x509.CertificateBuilder:
        """An end-entity certificate under the intermediate: validity from `not_before` (five
        minutes ago: clocks drift), digital signature plus `usage`, the extended `purposes`."""
        start = (not_before or _now() - dt.timedelta(minutes=5)).replace(microsecond=0)
        flags = dict.fromkeys(
            (
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.intermediate_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, **{**flags, **usage}), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate_key.public_key()
                ),
                critical=False,
            )
        )

    def _record(self, credential: Credential, kind: str, agency_code: str, user_id: str) -> None:
        """Into the index of issued certificates (the caller holds the directory's lock)."""
        index = self._index()
        index[credential.serial] = {
            "kind": kind,
            "subject": credential.certificate.subject.rfc4514_string(),
            "agency_code": agency_code,
            "user_id": user_id,
            "not_after": credential.certificate.not_valid_after_utc.isoformat(),
            "revoked_at": None,
            "reason": None,
        }
        self._save_index(index)

    # --- looking up ---------------------------------------------------------------------------

    def credential(self, serial: str) -> Credential:
        """An issued certificate with its key, for signing in development."""
        path = self.directory / "issued" / f"{serial.lower()}.p12"
        if not path.exists():
            raise CAError(f"no certificate with serial {serial}")
        key, cert, extra = pkcs12.load_key_and_certificates(path.read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey) and cert is not None
        return Credential(cert, key, tuple(extra))

    def official_serial(self, user_id: str, email: str = "") -> str:
        """Serial of the official's newest valid certificate (issued to their user id, and
        naming `email` when given); "" if none. Documents signs PDFs with it, mail signs
        S/MIME with it (a mail certificate must name the sender's address, RFC 8550 §3)."""
        now = _now()
        best = ("", "")
        for serial, e in self.certificates().items():
            if e.get("kind") != "official" or e.get("user_id") != user_id or e.get("revoked_at"):
                continue
            not_after = str(e.get("not_after") or "")
            if not not_after or dt.datetime.fromisoformat(not_after) <= now or not_after <= best[1]:
                continue
            if email and email.lower() not in self._emails(serial):
                continue
            best = (serial, not_after)
        return best[0]

    def ensure_official(
        self,
        *,
        user_id: str,
        full_name: str,
        agency_name: str,
        agency_code: str,
        email: str = "",
        auto_issue: bool = True,
    ) -> str:
        """Serial of the official's valid certificate (naming `email` when given), issued now
        if they have none and `auto_issue`; "" if none and not `auto_issue`. The signing
        services' first-use rule, in one place (documents for PDFs, mail for S/MIME)."""
        with _ISSUING:  # one certificate per official, even when two requests race
            serial = self.official_serial(user_id, email)
            if serial or not auto_issue:
                return serial
            return self.issue_official(
                full_name=full_name,
                agency_name=agency_name,
                agency_code=agency_code,
                email=email,
                user_id=user_id,
            ).serial

    def _emails(self, serial: str) -> set[str]:
        path = self.directory / "issued" / f"{serial}.pem"
        if not path.exists():
            return set()
        return certificate_emails(x509.load_pem_x509_certificate(path.read_bytes()))

    def export_pkcs12(self, serial: str, password: bytes | None = None) -> bytes:
        return self.credential(serial).pkcs12(password)

    def certificates(self) -> dict[str, dict[str, object]]:
        """The index: serial → kind, subject, agency_code, not_after, revoked_at, reason."""
        return self._index()

    def root_pem(self) -> bytes:
        return self.root_cert.public_bytes(serialization.Encoding.PEM)

    def intermediate_pem(self) -> bytes:
        return self.intermediate_cert.public_bytes(serialization.Encoding.PEM)

    @property
    def root_path(self) -> Path:
        return self.directory / "root.pem"

    def crl_paths(self) -> list[Path]:
        return [self.directory / "crl" / "root.crl", self.directory / "crl" / "intermediate.crl"]

    def crls(self) -> list[bytes]:
        """The published CRLs (DER), as verifiers load them."""
        return [p.read_bytes() for p in self.crl_paths()]

    # --- revoking -----------------------------------------------------------------------------

    def revoke(self, serial: str, reason: str = "unspecified") -> None:
        """Revoke an issued certificate and republish the CRL at once."""
        if reason not in REVOCATION_REASONS:
            raise CAError(f"reason must be one of {', '.join(REVOCATION_REASONS)}")
        serial = serial.lower()
        with _locked(self.directory):
            index = self._index()
            entry = index.get(serial)
            if entry is None:
                raise CAError(f"no certificate with serial {serial}")
            if entry["revoked_at"]:
                raise CAError(f"certificate {serial} is already revoked")
            entry["revoked_at"] = _now().isoformat()
            entry["reason"] = reason
            self._save_index(index)
            self._publish_crls(index)

    def refresh_crls(self) -> None:
        """Republish the CRLs if they are near their next update (a long-running service
        calls this before verifying, so its CRLs never expire under it)."""
        path = self.directory / "crl" / "intermediate.crl"
        if path.exists():
            next_update = x509.load_der_x509_crl(path.read_bytes()).next_update_utc
            if next_update and next_update - _now() > CRL_REFRESH_BEFORE:
                return
        with _locked(self.directory):
            self._refresh_crls_if_stale()

    def _refresh_crls_if_stale(self) -> None:
        path = self.directory / "crl" / "intermediate.crl"
        if path.exists():
            crl = x509.load_der_x509_crl(path.read_bytes())
            next_update = crl.next_update_utc
            if next_update and next_update - _now() > CRL_REFRESH_BEFORE:
                return
        self._publish_crls(self._index())

    def _publish_crls(self, index: dict[str, dict[str, object]]) -> None:
        crl_dir = self.directory / "crl"
        crl_dir.mkdir(exist_ok=True)
        revoked = [
            (int(serial, 16), str(e["revoked_at"]), str(e["reason"]))
            for serial, e in index.items()
            if e["revoked_at"]
        ]
        _write_public(
            crl_dir / "intermediate.crl",
            _crl(self.intermediate_cert, self.intermediate_key, revoked, self._next_crl_number()),
        )
        _write_public(
            crl_dir / "root.crl", _crl(self.root_cert, self.root_key, [], self._next_crl_number())
        )

    def _next_crl_number(self) -> int:
        # Increasing across republications, as RFC 5280 asks; time-based so no state is kept.
        return int(_now().timestamp() * 1000) + secrets.randbelow(1000)

    def _index(self) -> dict[str, dict[str, object]]:
        path = self.directory / "index.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _save_index(self, index: dict[str, dict[str, object]]) -> None:
        _write_public(self.directory / "index.json", json.dumps(index, indent=1).encode())


def _crl(
    issuer: x509.Certificate,
    key: rsa.RSAPrivateKey,
    revoked: list[tuple[int, str, str]],
    number: int,
) -> bytes:
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
        )
    )
    for serial, when, reason in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(dt.datetime.fromisoformat(when))
            .add_extension(x509.CRLReason(REVOCATION_REASONS[reason]), critical=False)
            .build()
        )
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _crl_distribution_point(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _ca_cert(
    subject: x509.Name,
    issuer: x509.Name,
    key: rsa.RSAPrivateKey,
    signing_key: rsa.RSAPrivateKey,
    path_length: int,
    years: int,
    crl_url: str | None = None,
) -> x509.Certificate:
    start = _now() - dt.timedelta(minutes=5)
    builder = x509.CertificateBuilder()
    if crl_url:
        builder = builder.add_extension(_crl_distribution_point(crl_url), critical=False)
    return (
        builder.subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
        .sign(signing_key, hashes.SHA256())
    )


def _create(path: Path, name: str, crl_base_url: str) -> None:
    def dn(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "LGSP (development only)"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    root_key, inter_key = _new_key(), _new_key()
    root = _ca_cert(dn(name), dn(name), root_key, root_key, 1, 20)
    inter = _ca_cert(
        dn(f"{name} - Issuing CA"),
        root.subject,
        inter_key,
        root_key,
        0,
        10,
        f"{crl_base_url}root.crl",
    )
    pem = serialization.Encoding.PEM

    def key_pem(k: rsa.RSAPrivateKey) -> bytes:
        return k.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())

    _write_private(path / "root.key.pem", key_pem(root_key))
    _write_private(path / "intermediate.key.pem", key_pem(inter_key))
    _write_public(path / "intermediate.pem", inter.public_bytes(pem))
    _write_public(path / "ca.json", json.dumps({"crl_base_url": crl_base_url}).encode())
    _write_public(path / "root.pem", root.public_bytes(pem))  # last: marks the CA complete


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One writer at a time across processes (the CLI and a running service)."""
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
