"""Put pictures side by side, each under its label: the README's sample figures.

    .venv/bin/python scripts/side_by_side.py OUT.png LABEL=PICTURE [LABEL=PICTURE ...]

e.g. the Conv samples of the fashion-mnist grid, seed 0:

    .venv/bin/python scripts/side_by_side.py docs/fashion-mnist-conv-samples.png \\
        l2="runs/fashion-mnist/cells/arch=conv,seed=0,loss=l2/samples.png" \\
        l1="runs/fashion-mnist/cells/arch=conv,seed=0,loss=l1/samples.png" ...
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"  # Debian's fonts-dejavu-core
GAP, LABEL_HEIGHT, FONT_SIZE = 24, 30, 20


def side_by_side(out: Path, pictures: list[tuple[str, Path]]) -> Path:
    images = [Image.open(path).convert("RGB") for _, path in pictures]
    height = max(im.height for im in images) + LABEL_HEIGHT
    width = sum(im.width for im in images) + GAP * (len(images) - 1)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.truetype(FONT, FONT_SIZE)
    x = 0
    for (label, _), im in zip(pictures, images, strict=True):
        draw.text((x, 2), label, fill="black", font=font)
        sheet.paste(im, (x, LABEL_HEIGHT))
        x += im.width + GAP
    sheet.save(out)
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2 or any("=" not in a for a in argv[1:]):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    pairs = [tuple(a.split("=", 1)) for a in argv[1:]]
    missing = [p for _, p in pairs if not Path(p).is_file()]
    if missing:
        print(f"side_by_side: no such picture: {missing[0]}", file=sys.stderr)
        return 2
    print(side_by_side(Path(argv[0]), [(label, Path(p)) for label, p in pairs]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
