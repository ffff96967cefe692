"""TLS for the phone-facing HTTPS listener: the operator's certificate, and devices' own.

Many phones carry a factory certificate issued by their vendor's CA with the MAC in the subject
(Cisco MPP: ``S=<mac>``; Poly and Yealink: per-MAC device certificates). With the vendors' CA
bundles installed, deskprov can require such a certificate and serve a device nothing but its
own files. ``self_signed`` makes a server certificate for tests and labs (``deskprov cert``).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioning.mac import MacError, normalize_mac

_MAC_IN_TEXT = re.compile(r"(?<![0-9A-Fa-f])((?:[0-9A-Fa-f]{2}[:-]?){5}[0-9A-Fa-f]{2})(?![0-9A-Fa-f])")


def mac_from_certificate(der: bytes) -> str | None:
    """The device MAC a client certificate names, looked for in the subject and the SAN."""
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    try:  # cryptography parses names and extensions lazily: a malformed one raises only here
        texts = [str(attr.value) for attr in cert.subject]
    except ValueError:
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        texts += [str(v) for v in san.get_values_for_type(x509.DNSName)]
        texts += [str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    except (x509.ExtensionNotFound, ValueError):
        pass
    for text in texts:
        for match in _MAC_IN_TEXT.finditer(text):
            try:
                return normalize_mac(match.group(1))
            except MacError:
                continue
    return None


def server_context(cert_file: Path, key_file: Path, client_ca: Path | None = None,
                   require_client_cert: bool = False) -> ssl.SSLContext:
    """TLS 1.2+ server context; with ``client_ca`` devices may (or must) present a certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca is not None:
        if client_ca.is_dir():
            context.load_verify_locations(capath=str(client_ca))
        else:
            context.load_verify_locations(cafile=str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def _name(common_name: str, **extra: str) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    oids = {"organization": NameOID.ORGANIZATION_NAME, "unit": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "state": NameOID.STATE_OR_PROVINCE_NAME, "serial": NameOID.SERIAL_NUMBER}
    attrs += [x509.NameAttribute(oids[k], v) for k, v in extra.items()]
    return x509.Name(attrs)


def issue(subject: x509.Name, key, issuer_cert: x509.Certificate | None, issuer_key, *, days: int = 825,
          ca: bool = False, server_names: tuple[str, ...] = (), client: bool = False) -> x509.Certificate:
    """A certificate signed by ``issuer_key`` (self-signed when ``issuer_cert`` is None)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server_names:
        alt = [x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in server_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if client:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def self_signed(names: tuple[str, ...], days: int = 825) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for a server reachable under ``names`` (hosts or IPs)."""
    key = new_key()
    cert = issue(_name(names[0], organization="deskprov"), key, None, key, days=days, server_names=names)
    return pem(cert), key_pem(key)


def write_pair(directory: Path, stem: str, cert_pem: bytes, private_pem: bytes) -> tuple[Path, Path]:
    """Write ``stem.crt`` and ``stem.key`` (the key readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(cert_pem)
    key_path.touch(mode=0o600)
    key_path.write_bytes(private_pem)
    return cert_path, key_path
