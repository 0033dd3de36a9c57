"""A private certificate authority for a pilot without a public one, and the broker's (or the
proxy's) server certificate signed by it (the `cryptography` library; `wastepilot certs`).

The CA's certificate is what device firmware pins; its key stays with the operator. Renewing a
server certificate keeps the CA, so devices trust the new certificate without a change; the
broker takes it on SIGHUP (docs/security.md, "TLS at every edge").
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT, CA_KEY = "ca.pem", "ca-key.pem"
CA_DAYS = 3650
SERVER_DAYS = 397  # what public CAs may issue at most; renew well before
CA_USAGE = dict.fromkeys(
    ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
     "key_agreement", "encipher_only", "decipher_only"),
    False,
) | {"key_cert_sign": True, "crl_sign": True}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ServerFiles:
    cert: Path
    key: Path
    ca: Path
    not_after: dt.datetime


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def expires_within(cert: Path, *, days: int) -> bool:
    """Whether the certificate in ``cert`` ends within ``days`` (or has ended)."""
    c = x509.load_pem_x509_certificate(cert.read_bytes())
    return c.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=days)


def ensure_ca(folder: Path, name: str = "wastepilot pilot CA") -> tuple[x509.Certificate, Path]:
    """The CA in ``folder``, made once (an existing one is kept: firmware pins it)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if cert_path.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), cert_path
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(**CA_USAGE), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, key)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, cert_path


def issue_server(
    folder: Path, hosts: list[str], *, stem: str = "broker", days: int = SERVER_DAYS
) -> ServerFiles:
    """A new server key and certificate for ``hosts`` (DNS names or IP addresses), signed by
    the CA in ``folder`` (made if missing). Written beside it as ``<stem>.pem`` and
    ``<stem>-key.pem``, each replaced atomically, the key first: a reader never sees a key
    that does not match the certificate for longer than the two renames."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name")
    ca_cert, ca_path = ensure_ca(folder)
    ca_key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{folder / CA_KEY} is not this tool's CA key (EC P-256)")
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
    _write_atomic(key_path, key_bytes, 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return ServerFiles(cert_path, key_path, ca_path, cert.not_valid_after_utc)
