"""The self-signed certificate of the simulator's TLS listener (``--irc-tls-port``, like Twitch's
``irc.chat.twitch.tv:6697``), made at start: with the ``cryptography`` package when it is installed
(it is not a dependency), else with the ``openssl`` binary. Clients trust it by loading the PEM file
(``ssl.create_default_context(cafile=...)``); its names are ``localhost``, ``irc.chat.twitch.tv``,
127.0.0.1 and the listening host.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Final

#: The certificate's subject and the names it is valid for (besides the listening host).
COMMON_NAME: Final = "irc.chat.twitch.tv"
NAMES: Final = ("localhost", COMMON_NAME)
ADDRESSES: Final = ("127.0.0.1",)
DAYS: Final = 7


class TlsUnavailable(RuntimeError):
    """No way to make a certificate here; the message is one sentence."""


def _alt_names(host: str) -> tuple[list[str], list[str]]:
    names, addresses = list(NAMES), list(ADDRESSES)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host and host not in names:
            names.append(host)
    else:
        if host not in addresses and host not in ("0.0.0.0", "::"):
            addresses.append(host)
    return names, addresses


def make_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """Write ``cert.pem`` and ``key.pem`` (an EC P-256 key) into ``directory``; their paths."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    names, addresses = _alt_names(host)
    try:
        _with_cryptography(cert, key, names, addresses)
    except ImportError:
        _with_openssl(cert, key, names, addresses)
    os.chmod(key, 0o600)
    return cert, key


def _with_cryptography(cert: Path, key: Path, names: list[str], addresses: list[str]) -> None:
    from cryptography import x509  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives import hashes, serialization  # type: ignore[import-not-found, unused-ignore]
    from cryptography.hazmat.primitives.asymmetric import ec  # type: ignore[import-not-found, unused-ignore]
    from cryptography.x509.oid import NameOID  # type: ignore[import-not-found, unused-ignore]

    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _with_openssl(cert: Path, key: Path, names: list[str], addresses: list[str]) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise TlsUnavailable(
            "--irc-tls-port needs a certificate, and neither the cryptography package nor the openssl "
            "binary is here to make one: install either, or leave --irc-tls-port off"
        )
    alt = ",".join([f"DNS:{n}" for n in names] + [f"IP:{a}" for a in addresses])
    command = [
        binary, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(DAYS),
        "-subj", f"/CN={COMMON_NAME}", "-addext", f"subjectAltName={alt}",
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise TlsUnavailable(f"openssl could not make the certificate of --irc-tls-port: {tail}")


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
