"""TLS: the self-signed pair in the data folder and the server context, over real sockets."""

from __future__ import annotations

import asyncio
import ssl
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from courriel.errors import ConfigError
from courriel.protocols.tls import ensure_certificate, server_context

HOST = "mail.example.test"


def san_names(cert_path: Path) -> list[str]:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in san]


@asynccontextmanager
async def tls_echo_server(context: ssl.SSLContext) -> AsyncIterator[int]:
    """Serve on 127.0.0.1:<free port>: read one line, answer it, close."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            writer.write(b"echo " + line)
            await writer.drain()
        except (ssl.SSLError, ConnectionError):
            pass  # a refused handshake is what some tests expect
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def exchange(port: int, client: ssl.SSLContext, server_hostname: str) -> tuple[bytes, str]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client, server_hostname=server_hostname
    )
    try:
        writer.write(b"hello\r\n")
        await writer.drain()
        answer = await reader.readline()
        version = writer.get_extra_info("ssl_object").version()
    finally:
        writer.close()
    return answer, version


def test_self_signed_pair_is_created_with_safe_modes(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, HOST)
    assert cert == tmp_path / "tls" / "cert.pem"
    assert key == tmp_path / "tls" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    assert san_names(cert) == [HOST]
    assert not [p for p in (tmp_path / "tls").iterdir() if p.name.endswith(".tmp")]
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime.days >= 3650


def test_existing_pair_is_reused_for_the_same_hostname(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, HOST)
    before = cert.read_bytes(), key.read_bytes()
    assert ensure_certificate(tmp_path, HOST.upper()) == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == before


def test_pair_is_replaced_when_hostname_changes_or_files_break(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, HOST)
    ensure_certificate(tmp_path, "other.example.test")
    assert san_names(cert) == ["other.example.test"]
    cert.write_text("garbage")
    ensure_certificate(tmp_path, "other.example.test")
    assert san_names(cert) == ["other.example.test"]
    # A key that does not belong to the certificate is replaced too.
    old_cert = cert.read_bytes()
    other = tmp_path / "other"
    _, other_key = ensure_certificate(other, "other.example.test")
    key.write_bytes(other_key.read_bytes())
    ensure_certificate(tmp_path, "other.example.test")
    assert cert.read_bytes() != old_cert
    server_context(cert, key)  # the new pair matches


def test_ip_hostname_goes_into_an_ip_san(tmp_path: Path) -> None:
    cert, _ = ensure_certificate(tmp_path, "127.0.0.1")
    assert san_names(cert) == ["127.0.0.1"]
    assert ensure_certificate(tmp_path, "127.0.0.1")[0] == cert


def test_configured_pair_is_returned_absolute_and_untouched(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, HOST, cert="certs/c.pem", key="/etc/k.pem")
    assert cert == tmp_path / "certs" / "c.pem"
    assert key == Path("/etc/k.pem")
    assert not (tmp_path / "tls").exists()
    assert not (tmp_path / "certs").exists()


def test_configured_cert_without_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        ensure_certificate(tmp_path, HOST, cert="c.pem")
    assert excinfo.value.problems[0].key == "tls.key"


def test_server_context_names_tls_cert_on_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError) as excinfo:
        server_context(bad, bad)
    (problem,) = excinfo.value.problems
    assert problem.key == "tls.cert"
    assert problem.value == str(bad)
    with pytest.raises(ConfigError):
        server_context(tmp_path / "missing.pem", tmp_path / "missing-key.pem")


def test_server_context_requires_tls12(tmp_path: Path) -> None:
    context = server_context(*ensure_certificate(tmp_path, HOST))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE  # servers do not ask for client certificates


async def test_stdlib_client_verifies_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, HOST)
    client = ssl.create_default_context(cafile=str(cert))
    async with tls_echo_server(server_context(cert, key)) as port:
        answer, version = await exchange(port, client, HOST)
        assert answer == b"echo hello\r\n"
        assert version in ("TLSv1.2", "TLSv1.3")
        # The certificate names only the configured host: another name fails verification.
        with pytest.raises(ssl.SSLCertVerificationError):
            await exchange(port, client, "wrong.example.test")


async def test_configured_ca_issued_pair_serves(tmp_path: Path) -> None:
    ca = trustme.CA()
    issued = ca.issue_cert(HOST)
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "chain.pem"))
    issued.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert, key = ensure_certificate(tmp_path, HOST, cert="chain.pem", key="key.pem")
    client = ssl.create_default_context()
    ca.configure_trust(client)
    async with tls_echo_server(server_context(cert, key)) as port:
        answer, _ = await exchange(port, client, HOST)
    assert answer == b"echo hello\r\n"
