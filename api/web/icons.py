"""The IN/UT app's icons, drawn in code (no image files to keep in step): a rounded tile with a
door and an arrow going in, in the portal's colours."""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw

SIZES = (180, 192, 512)
BRAND = (14, 92, 99)
ACCENT = (94, 234, 212)


@lru_cache(maxsize=8)
def icon_png(size: int, maskable: bool = False) -> bytes:
    scale = 4
    s = size * scale
    image = Image.new("RGBA", (s, s), BRAND + (255,) if maskable else (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if not maskable:
        draw.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 5, fill=BRAND)
    inset = s * (0.2 if maskable else 0.12)
    box = s - 2 * inset

    def at(x: float, y: float) -> tuple[float, float]:
        return inset + x * box, inset + y * box

    # the door: an open frame on the right
    w = box * 0.07
    draw.rounded_rectangle((*at(0.52, 0.14), *at(0.86, 0.86)), radius=box * 0.05, outline=(255, 255, 255),
                           width=int(w))
    draw.ellipse((*at(0.60, 0.47), *at(0.66, 0.53)), fill=(255, 255, 255))
    # the arrow going in
    draw.rounded_rectangle((*at(0.12, 0.44), *at(0.50, 0.56)), radius=box * 0.04, fill=ACCENT)
    draw.polygon([at(0.42, 0.30), at(0.62, 0.50), at(0.42, 0.70)], fill=ACCENT)
    out = io.BytesIO()
    image.resize((size, size), Image.LANCZOS).save(out, "PNG", optimize=True)
    return out.getvalue()
