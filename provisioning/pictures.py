"""Profile pictures (U6): checked by really decoding them, thumbnailed, stored per user.

Only PNG, JPEG, GIF and WebP that Pillow can decode are accepted, up to a size and pixel
limit (a small file can still claim a huge canvas: a decompression bomb). The original bytes
and a 128x128 PNG thumbnail are stored under ``<data dir>/pictures/<user id>/``, named by
content hash, written atomically.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from pathlib import Path

from PIL import Image

TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
MAX_PIXELS = 25_000_000
THUMBNAIL = (128, 128)


class PictureError(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_and_thumbnail(data: bytes, max_bytes: int) -> tuple[str, bytes]:
    """(media type, PNG thumbnail) of an acceptable picture; PictureError (413/415) otherwise."""
    if len(data) > max_bytes:
        raise PictureError(413, f"the picture is larger than {max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                kind = probe.format
                if kind not in TYPES:
                    raise PictureError(415, f"pictures must be PNG, JPEG, GIF or WebP, not {kind}")
                width, height = probe.size
                if width * height > MAX_PIXELS or width < 1 or height < 1:
                    raise PictureError(413, f"the picture is {width}x{height} pixels, too large")
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image.thumbnail(THUMBNAIL)
                thumb = image.convert("RGBA")
                out = io.BytesIO()
                thumb.save(out, "PNG")
    except PictureError:
        raise
    except Exception:  # Pillow raises many types for broken input; all mean "not a picture"
        raise PictureError(415, "not a picture that can be decoded (PNG, JPEG, GIF or WebP)") from None
    return TYPES[kind], out.getvalue()


class PictureStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, user_id: int) -> Path:
        return self.root / str(int(user_id))

    def path(self, user_id: int, sha256: str, media_type: str, thumbnail: bool = False) -> Path:
        if not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError("bad picture name")
        name = f"{sha256}.thumb.png" if thumbnail else f"{sha256}.{EXTENSIONS.get(media_type, 'bin')}"
        return self._dir(user_id) / name

    def save(self, user_id: int, data: bytes, media_type: str, thumbnail: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        directory = self._dir(user_id)
        directory.mkdir(parents=True, exist_ok=True)
        for target, content in ((self.path(user_id, sha, media_type), data),
                                (self.path(user_id, sha, media_type, thumbnail=True), thumbnail)):
            fd, tmp = tempfile.mkstemp(prefix=".pic-", dir=directory)
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.replace(tmp, target)
        return sha

    def remove_others(self, user_id: int, keep: str | None) -> None:
        """Delete the user's stored pictures except the current one."""
        directory = self._dir(user_id)
        if not directory.is_dir():
            return
        for path in directory.iterdir():
            if keep is None or not path.name.startswith(keep + "."):
                path.unlink(missing_ok=True)
