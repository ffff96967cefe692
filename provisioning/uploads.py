"""Files devices upload (Poly ``-phone.cfg``/``-web.cfg``, logs), stored per device.

Written atomically (temporary file, fsync, rename): a crash or a full disk leaves the previous
version or nothing, never half a file. Only the device that wrote a file may read it back.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


class UploadError(OSError):
    """The upload could not be stored; nothing was changed."""


class UploadStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, mac: str, name: str) -> Path:
        # mac is canonical hex and name a vendor-recognised file name: no separators can appear,
        # but check anyway rather than trust the callers forever.
        if "/" in name or name in (".", "..") or not mac.isalnum():
            raise ValueError(f"illegal upload name {mac}/{name}")
        return self.root / mac / name

    def read(self, mac: str, name: str) -> bytes | None:
        try:
            return self._path(mac, name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, mac: str, name: str, data: bytes) -> Path:
        target = self._path(mac, name)
        tmp = None
        try:  # the folder and the temporary file too: a full disk fails there as often as in write()
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
            reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
            raise UploadError(exc.errno, f"cannot store upload {name}: {reason}") from exc
        return target
