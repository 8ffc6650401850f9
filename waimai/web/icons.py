"""`python -m waimai.web.icons`: draw the app icons the web app manifest names (static/icons/icon-*.png).

A bowl with chopsticks in the pages' accent colour, drawn with Pillow so the PNGs in the repo can be made
again exactly; "maskable": the drawing keeps inside the central 80 % safe zone."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ACCENT = (0xB9, 0x3D, 0x0C)  # --accent in static/app.css
SIZES = (192, 512)
OUT = Path(__file__).resolve().parent / "static" / "icons"


def draw(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), ACCENT)
    d = ImageDraw.Draw(img)
    s = size / 100
    white = (255, 255, 255)
    # chopsticks
    d.line([(58 * s, 18 * s), (40 * s, 50 * s)], fill=white, width=max(2, round(4 * s)))
    d.line([(68 * s, 20 * s), (48 * s, 50 * s)], fill=white, width=max(2, round(4 * s)))
    # the bowl: a half disc with a rim and a foot
    d.pieslice([(22 * s, 28 * s), (78 * s, 84 * s)], 0, 180, fill=white)
    d.rectangle([(20 * s, 54 * s), (80 * s, 58 * s)], fill=white)
    d.rectangle([(40 * s, 82 * s), (60 * s, 86 * s)], fill=white)
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        draw(size).save(OUT / f"icon-{size}.png", optimize=True)


if __name__ == "__main__":
    main()
