"""Draws the app icons (no image library needed): a calendar with a check mark.

python manifest/make_icons.py   # writes bot/app_package/color.png (192x192) and outline.png (32x32)

They ship in the wheel beside the manifest template (`python -m bot manifest` packs them).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

Pixel = tuple[int, int, int, int]


def png(width: int, height: int, pixel: Callable[[int, int], Pixel]) -> bytes:
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def calendar_with_check(size: int, u: float, x: int, y: int) -> bool:
    """True where the white glyph is, on a `size` grid (u = size / 32)."""
    fx, fy = x / u, y / u
    frame = 6 <= fx <= 26 and 7 <= fy <= 26 and (fx < 8 or fx > 24 or fy < 9 or fy > 24 or 11 <= fy <= 12.5)
    rings = (10 <= fx <= 12 or 20 <= fx <= 22) and 4.5 <= fy <= 9
    # check mark: two strokes
    stroke1 = 11 <= fx <= 15 and abs((fy - 18.5) - (fx - 11)) <= 1.3
    stroke2 = 14.5 <= fx <= 22 and abs((fy - 22) + (fx - 14.5) * 1.0) <= 1.3
    return frame or rings or stroke1 or stroke2


def main() -> None:
    here = Path(__file__).resolve().parents[1] / "bot" / "app_package"
    accent = (0x2B, 0x57, 0x9A, 255)
    white = (255, 255, 255, 255)
    clear = (255, 255, 255, 0)
    color = png(192, 192, lambda x, y: white if calendar_with_check(192, 6, x, y) else accent)
    outline = png(32, 32, lambda x, y: white if calendar_with_check(32, 1, x, y) else clear)
    (here / "color.png").write_bytes(color)
    (here / "outline.png").write_bytes(outline)


if __name__ == "__main__":
    main()
