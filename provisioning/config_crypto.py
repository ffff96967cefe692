"""Vendor config encryption: a device's secret-bearing file, encrypted with the device's own key.

Why: digest authentication proves who fetches a file but leaves its body readable on the wire
(plain HTTP, TFTP) and on any proxy in between. The vendors' own answer is an encrypted config
file plus a key the phone keeps in flash. Each vendor's key is delivered the way that vendor
does it, exactly once, inside the device's own plain file, which travels under the same gate as
the SIP secrets it sits next to (device authentication, first contact, TFTP secret networks);
after that the device's files are served encrypted and the key is never on the wire again.

Schemes (facts and sources in README "Security", vendors.md 1.6, 3a/3b, 5.6):

- **Yealink** (:class:`YealinkAesEcb`): AES-128-ECB with a 16-character key used as its own
  bytes ("16-character symmetric keys", admin guide V84 "Encrypting and Decrypting Files";
  ECB and key-as-bytes as openssl reproduces Yealink's compatibility-mode tool). The key reaches
  the phone as ``static.auto_provision.aes_key.mac``. The padding of the last block is not
  documented: we pad with PKCS#7 after a final newline, so whatever a phone does with the
  padding bytes, they form a line without ``=`` that the config parser ignores. **(padding
  inferred, not confirmed on hardware)**
- **Cisco SPA/MPP** and **Grandstream** (:class:`OpenSslAes256Cbc`): the ``openssl enc
  -aes-256-cbc -k <secret>`` format: ``Salted__``, an 8-byte salt, then AES-256-CBC with key and
  IV derived from secret and salt by OpenSSL's EVP_BytesToKey with MD5 (Cisco: "the firmware has
  been tested against openssl-0.9.7c", whose default digest is MD5; Grandstream: "the same [key
  derivation] as the one used by OpenSSL", 2011). Cisco gets the key as ``[--key "..."]`` in
  its Profile_Rule; Grandstream as P1359 ("XML Config File Password"; the same guide also says
  P1349 once: P1359 is the name it gives the parameter).
- **Poly** is not encrypted: its key format is documented (``Crypt=1;KeyDesc=...;Key=<32 hex>;``,
  AES-128-CBC) but the encrypted file's layout is only in Polycom's SDK, and a phone that cannot
  decrypt a file reboots and tries again forever. Poly files stay plain, served only to
  authenticated devices (as for every vendor without a cipher here).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import secrets
import string
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

if TYPE_CHECKING:
    from provisioning.model import Device
    from provisioning.render import DeviceSnapshot
    from provisioning.vendors.base import DeviceContext, FileRequest, VendorPlugin

log = logging.getLogger("deskprov.config_crypto")

#: Appended to a file's cache name for its encrypted variant (never part of a real file name).
SEALED = "\0sealed"
_ALPHANUMERIC = string.ascii_letters + string.digits


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


class ConfigCipher(ABC):
    """One vendor scheme: how its keys look and how it encrypts a file."""

    name: str

    @abstractmethod
    def new_key(self) -> str:
        """A fresh random key in the form the vendor's devices take."""

    @abstractmethod
    def valid_key(self, key: str) -> bool:
        """Whether a stored key has this scheme's form (a device may have changed vendor)."""

    @abstractmethod
    def encrypt(self, plaintext: bytes, key: str) -> bytes:
        """The file as the device expects it on the wire."""


class YealinkAesEcb(ConfigCipher):
    """AES-128-ECB, the 16 key characters are the key bytes (about 95 bits of randomness)."""

    name = "yealink-aes-128-ecb"
    KEY_LENGTH = 16

    def new_key(self) -> str:
        return _random_text(self.KEY_LENGTH)

    def valid_key(self, key: str) -> bool:
        return len(key) == self.KEY_LENGTH and all(c in _ALPHANUMERIC for c in key)

    def encrypt(self, plaintext: bytes, key: str) -> bytes:
        if not plaintext.endswith(b"\n"):
            plaintext += b"\n"  # the padding bytes then never touch the last setting's value
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(key.encode("ascii")), modes.ECB()).encryptor()
        return encryptor.update(padded) + encryptor.finalize()


class OpenSslAes256Cbc(ConfigCipher):
    """``openssl enc -aes-256-cbc -md md5 -k <key>``: ``Salted__`` + salt + AES-256-CBC (PKCS#7)."""

    name = "openssl-aes-256-cbc"
    KEY_LENGTH = 32
    MAGIC = b"Salted__"

    def new_key(self) -> str:
        # Letters and digits only: it sits inside [--key "..."] and an XML element unescaped.
        return _random_text(self.KEY_LENGTH)

    def valid_key(self, key: str) -> bool:
        return len(key) == self.KEY_LENGTH and all(c in _ALPHANUMERIC for c in key)

    @staticmethod
    def derive(secret: bytes, salt: bytes) -> tuple[bytes, bytes]:
        """OpenSSL's EVP_BytesToKey with MD5, one iteration: (32-byte key, 16-byte IV)."""
        material, block = b"", b""
        while len(material) < 48:
            block = hashlib.md5(block + secret + salt).digest()
            material += block
        return material[:32], material[32:48]

    def encrypt(self, plaintext: bytes, key: str) -> bytes:
        salt = os.urandom(8)
        aes_key, iv = self.derive(key.encode("ascii"), salt)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
        return self.MAGIC + salt + encryptor.update(padded) + encryptor.finalize()


YEALINK = YealinkAesEcb()
OPENSSL = OpenSslAes256Cbc()


# ---------------------------------------------------------------------------------------------
# Policy: which devices, which files, and the key's life (generated, delivered once, used).


def wanted(device: "Device") -> bool:
    """The device's own switch wins; otherwise its organisation's."""
    if device.encrypt_configs is not None:
        return device.encrypt_configs
    return bool(device.organization is not None and device.organization.encrypt_configs)


def ensure_key(device: "Device", cipher: ConfigCipher) -> bool:
    """Give the device a key of the cipher's form if it has none (or one of another form).

    Returns True when the device changed (the caller commits). A new key has not been delivered.
    """
    if device.config_key is not None and cipher.valid_key(device.config_key):
        return False
    device.config_key = cipher.new_key()
    device.config_key_delivered_at = None
    log.info("generated a %s config key for %s", cipher.name, device.mac)
    return True


def must_change(device: "Device", cipher: ConfigCipher | None) -> bool:
    """Whether ``prepare`` would change the device (without changing it)."""
    if cipher is not None and wanted(device):
        return device.config_key is None or not cipher.valid_key(device.config_key)
    return device.config_key_delivered_at is not None


def prepare(device: "Device", cipher: ConfigCipher | None) -> bool:
    """Bring the device's key state in line with its switch; True when the caller must commit.

    Switched on: it has a key of the cipher's form. Switched off (or no cipher): its files go
    plain, so the key counts as not delivered; switching on again hands the same key over again,
    which is how a phone that lost its key (factory reset) gets it back.
    """
    if cipher is not None and wanted(device):
        return ensure_key(device, cipher)
    if device.config_key_delivered_at is not None:
        device.config_key_delivered_at = None
        return True
    return False


def with_key(snapshot: "DeviceSnapshot", device: "Device", cipher: ConfigCipher | None) -> "DeviceSnapshot":
    """The render snapshot with the device's key in it when its files are to be encrypted."""
    if cipher is None or not wanted(device) or not device.config_key:
        return snapshot
    context = dataclasses.replace(snapshot.context, config_key=device.config_key,
                                  config_key_delivered=device.config_key_delivered_at is not None)
    return dataclasses.replace(snapshot, context=context)


def sealed(plugin: "VendorPlugin", request: "FileRequest", ctx: "DeviceContext") -> bool:
    """Whether this file goes out encrypted: the device has its key, and the vendor encrypts it."""
    return bool(ctx.config_key and ctx.config_key_delivered and plugin.encrypts(request, ctx))


def delivers_key(plugin: "VendorPlugin", request: "FileRequest", ctx: "DeviceContext") -> bool:
    """Whether serving this (plain) file hands the device its key for the first time."""
    return bool(ctx.config_key and not ctx.config_key_delivered and plugin.encrypts(request, ctx))


def seal(plugin: "VendorPlugin", ctx: "DeviceContext", body: bytes) -> bytes:
    cipher = plugin.config_cipher(ctx.model)
    if cipher is None:  # encrypts() said yes: a plugin bug, never serve the file plain instead
        raise RuntimeError(f"{plugin.name} encrypts {ctx.model.name} files but has no cipher for it")
    return cipher.encrypt(body, ctx.config_key)
