"""DKIM signing keys (RFC 6376) for the province's mail domains, and the DNS record an
operator publishes for each.

One RSA-2048 key per domain, made at first use in <data_dir>/mail-dkim/<domain>.key (mode
0600, PKCS#1 PEM as dkimpy reads it), unless [mail] dkim_key_file names one key for all.
The selector is [mail] dkim_selector ("lgsp"): the record is published at
<selector>._domainkey.<domain> as TXT "v=DKIM1; k=rsa; p=<public key>" (RFC 6376 §3.6.1).
"""

from __future__ import annotations

import base64
import os
import re
import threading
from email.parser import BytesHeaderParser
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from lgsp.config import Settings

# Signed header fields (RFC 6376 §5.4.1's recommended set), those the message has; From is
# required.
SIGNED_HEADERS = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
]
_DOMAIN = re.compile(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")


class DkimKeys:
    def __init__(self, directory: Path, selector: str, key_file: str = "") -> None:
        self.directory = directory
        self.selector = selector
        self.key_file = Path(key_file) if key_file else None
        self._lock = threading.Lock()

    def private_pem(self, domain: str) -> bytes:
        """The domain's key (made now if it has none yet)."""
        if self.key_file is not None:
            return self.key_file.read_bytes()
        domain = domain.lower()
        if not _DOMAIN.fullmatch(domain) or ".." in domain:
            raise ValueError(f"not a domain: {domain!r}")
        path = self.directory / f"{domain}.key"
        with self._lock:
            if not path.exists():
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.TraditionalOpenSSL,
                    serialization.NoEncryption(),
                )
                tmp = path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(pem)
                os.replace(tmp, path)  # whole or absent, for a second process reading it
            return path.read_bytes()

    def txt_value(self, domain: str) -> str:
        """The TXT record's value: v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo, base64>."""
        key = serialization.load_pem_private_key(self.private_pem(domain), password=None)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"

    def dns_record(self, domain: str) -> str:
        """The zone-file line to publish (the value split in strings of at most 255
        characters, as TXT requires)."""
        value = self.txt_value(domain)
        chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        return f"{self.selector}._domainkey.{domain.lower()}. IN TXT ( {chunks} )"

    def sign(self, raw: bytes, domain: str) -> bytes:
        """`raw` with a DKIM-Signature for `domain` prepended (relaxed/relaxed, rsa-sha256)."""
        # Only the fields present: a field signed as absent breaks the signature when a later
        # MTA adds it (Postfix's cleanup adds Message-ID and Date to mail that lacks them).
        present = {name.lower().encode() for name in BytesHeaderParser().parsebytes(raw).keys()}
        header = dkim.sign(
            raw,
            self.selector.encode(),
            domain.lower().encode(),
            self.private_pem(domain),
            include_headers=[h for h in SIGNED_HEADERS if h in present],
            canonicalize=(b"relaxed", b"relaxed"),
            linesep=b"\r\n",
        )
        return bytes(header) + raw


def keys_from_settings(settings: Settings) -> DkimKeys:
    section = settings.mail
    return DkimKeys(settings.data_dir / "mail-dkim", section.dkim_selector, section.dkim_key_file)


def dkim_dns_record(settings: Settings, domain: str) -> str:
    """For operators (the `lgsp` command): the DKIM TXT record to publish for `domain`, e.g.
    `lgsp._domainkey.stp.hatinh.gov.vn. IN TXT ( "v=DKIM1; k=rsa; p=MIIB…" )`. Makes the
    domain's key if it has none yet, so the record can be published before the first mail."""
    return keys_from_settings(settings).dns_record(domain)
