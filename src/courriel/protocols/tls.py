"""TLS for every listener: the certificate pair and the server-side ``SSLContext``.

This module owns ``<data>/tls/cert.pem`` and ``<data>/tls/key.pem``, the self-signed
pair used when ``tls.cert``/``tls.key`` are not configured, so that a fresh data folder
offers STARTTLS and implicit TLS (RFC 8314 §3) from the first start.

Invariants:
    * A configured pair is never generated nor modified; only the pair in ``<data>/tls``
      is, and only when it is missing, unreadable, mismatched (key vs certificate), expired
      or not valid for the configured host name.
    * Files are written tmp → fsync → rename (then the folder is fsynced), the key first,
      with mode 0600; a reader never sees a half-written file.
    * Server contexts refuse anything older than TLS 1.2 (1.0 and 1.1 are deprecated).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from courriel.errors import ConfigError, ConfigProblem

__all__ = ["CERT_FILE", "KEY_FILE", "TLS_DIR", "ensure_certificate", "server_context"]

TLS_DIR = "tls"
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
_VALIDITY = datetime.timedelta(days=3652)  # about 10 years
_CLOCK_SKEW = datetime.timedelta(hours=1)  # not_before is back-dated by this much


def _problem(key: str, source: str, value: str, message: str) -> ConfigError:
    return ConfigError([ConfigProblem(source=source, key=key, value=value, message=message)])


def ensure_certificate(
    data_dir: Path, hostname: str, cert: str = "", key: str = ""
) -> tuple[Path, Path]:
    """Return the certificate and key files to serve TLS with, creating a pair if needed.

    Args:
        data_dir: the data folder; relative ``cert``/``key`` are relative to it.
        hostname: ``server.hostname``; a generated certificate names it in its SAN.
        cert: ``tls.cert`` as configured (``""``: use the self-signed pair).
        key: ``tls.key`` as configured (``""``: use the self-signed pair).

    Returns:
        ``(cert_path, key_path)``, both absolute.

    Raises:
        ConfigError: only one of ``cert``/``key`` is given, or the pair in
            ``<data>/tls`` cannot be written.
    """
    data_dir = data_dir.expanduser().absolute()
    if cert or key:
        if not (cert and key):
            missing, given = ("tls.key", cert) if cert else ("tls.cert", key)
            raise _problem(missing, "tls", given, "tls.cert and tls.key must be set together")
        return data_dir / Path(cert).expanduser(), data_dir / Path(key).expanduser()
    folder = data_dir / TLS_DIR
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if _pair_is_usable(cert_path, key_path, hostname):
        return cert_path, key_path
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_pem, cert_pem = _self_signed(hostname)
        _write_atomic(key_path, key_pem, 0o600)
        _write_atomic(cert_path, cert_pem, 0o644)
        _fsync_dir(folder)
    except OSError as exc:
        raise _problem(
            "tls.cert", str(folder), "", f"cannot write a self-signed certificate: {exc}"
        ) from exc
    return cert_path, key_path


def _names_match(certificate: x509.Certificate, hostname: str) -> bool:
    """Tell whether the certificate's SAN names ``hostname`` (exact, case-insensitive match)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        return ipaddress.ip_address(hostname) in san.get_values_for_type(x509.IPAddress)
    except ValueError:
        names = san.get_values_for_type(x509.DNSName)
        return hostname.lower() in (name.lower() for name in names)


def _pair_is_usable(cert_path: Path, key_path: Path, hostname: str) -> bool:
    """Tell whether an existing pair can be served as is for ``hostname``."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        private_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    now = datetime.datetime.now(datetime.UTC)
    if not certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc:
        return False
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    same_key = private_key.public_key().public_bytes(encoding, public) == (
        certificate.public_key().public_bytes(encoding, public)
    )
    return same_key and _names_match(certificate, hostname)


def _self_signed(hostname: str) -> tuple[bytes, bytes]:
    """Make an EC P-256 key and a self-signed certificate for ``hostname``; return PEMs."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    try:
        general_name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        general_name = x509.DNSName(hostname)
    # X.509 bounds a CommonName to 64 characters; the SAN carries the full name.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    now = datetime.datetime.now(datetime.UTC)
    public_key = private_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName([general_name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file: tmp → fsync → rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, mode)  # os.open's mode is narrowed by the umask: set it exactly
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """Build the server-side TLS context shared by every TLS listener.

    Args:
        cert: the PEM certificate chain.
        key: the PEM private key of ``cert``.

    Returns:
        A context for server sockets, TLS 1.2 at least.

    Raises:
        ConfigError: naming ``tls.cert``, when the pair cannot be loaded.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # TLS 1.0 and 1.1 are deprecated: 1.2 is the minimum.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise _problem(
            "tls.cert", str(cert), str(cert), f"cannot load the certificate with key {key}: {exc}"
        ) from exc
    return context
