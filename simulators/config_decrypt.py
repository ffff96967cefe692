"""How the phones open encrypted config files, written from the vendors' documentation alone
(never from the server's code): Yealink's AES-128-ECB with the 16-character key as its bytes,
and the ``openssl enc -aes-256-cbc -k`` format Cisco and Grandstream read (``Salted__``, salt,
key and IV from EVP_BytesToKey with MD5).

A wrong key fails loudly (:class:`DecryptError`), as a phone shows "decryption failed" and keeps
its old settings instead of applying garbage.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["DecryptError", "yealink_decrypt", "openssl_decrypt", "is_openssl_salted"]

_SALTED = b"Salted__"


class DecryptError(ValueError):
    """The file does not open with the key the phone has."""


def _unpad(data: bytes, what: str) -> bytes:
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        raise DecryptError(f"{what}: wrong key (the padding does not check out)") from None


def yealink_decrypt(data: bytes, key: str, *, expect: bytes = b"#!version") -> bytes:
    if len(key) not in (16,):
        raise DecryptError(f"a Yealink AES key has 16 characters, not {len(key)}")
    if not data or len(data) % 16:
        raise DecryptError("not an AES-128-ECB file (length is not a whole number of blocks)")
    decryptor = Cipher(algorithms.AES(key.encode("ascii")), modes.ECB()).decryptor()
    plain = _unpad(decryptor.update(data) + decryptor.finalize(), "AES-128-ECB")
    if not plain.startswith(expect):
        raise DecryptError("wrong key: the decrypted file is not a Yealink config")
    return plain


def is_openssl_salted(data: bytes) -> bool:
    return data.startswith(_SALTED)


def openssl_decrypt(data: bytes, secret: str) -> bytes:
    if not is_openssl_salted(data) or len(data) < 32 or (len(data) - 16) % 16:
        raise DecryptError("not an openssl 'Salted__' AES-256-CBC file")
    salt, body = data[8:16], data[16:]
    material, block = b"", b""
    while len(material) < 48:
        block = hashlib.md5(block + secret.encode("utf-8") + salt).digest()
        material += block
    decryptor = Cipher(algorithms.AES(material[:32]), modes.CBC(material[32:48])).decryptor()
    return _unpad(decryptor.update(body) + decryptor.finalize(), "AES-256-CBC")
