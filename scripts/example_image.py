"""Make the README's example: a sample photo blended with two sample paintings at ratio 0, 0.5 and 1.

    .venv/bin/python scripts/example_image.py            # writes docs/example-blend.jpg

It runs the blend engine exactly as a consumer does (Magenta's pretrained network, the default),
so the picture in the README is what `stylequeue dev` gives for the same inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw  # noqa: E402

from consumer.engines.blend import BlendParams  # noqa: E402
from consumer.engines.blend_engine import create_engine  # noqa: E402
from stylequeue.config import EngineConfig  # noqa: E402

SAMPLES = ROOT / "samples"
LABEL = 22  # px of caption under each tile


def tile(image: Image.Image, height: int, caption: str) -> Image.Image:
    width = round(image.width * height / image.height)
    out = Image.new("RGB", (width, height + LABEL), "white")
    out.paste(image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS), (0, 0))
    ImageDraw.Draw(out).text((4, height + 5), caption, fill="black")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--content", default="content/chelsea.png")
    parser.add_argument("--style1", default="style/starry_night.jpg")
    parser.add_argument("--style2", default="style/wave.jpg")
    parser.add_argument("--size", type=int, default=384, help="image_size of the jobs")
    parser.add_argument("--height", type=int, default=200, help="tile height in the sheet")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "example-blend.jpg")
    args = parser.parse_args(argv)

    engine = create_engine(EngineConfig(random_weights=False))
    if not engine.availability().ok:
        raise SystemExit(engine.availability().reason)
    content, s1, s2 = (
        Image.open(SAMPLES / p).convert("RGB") for p in (args.content, args.style1, args.style2)
    )
    shown = {"content": content, "style 1": s1, "style 2": s2}
    for ratio in (0.0, 0.5, 1.0):
        result = engine.run(content, [s1, s2], BlendParams(ratio=ratio, image_size=args.size))
        shown[f"ratio {ratio:g}"] = result.image
    tiles = [tile(image, args.height, caption) for caption, image in shown.items()]
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), "white")
    x = 0
    for t in tiles:
        sheet.paste(t, (x, 0))
        x += t.width + 4
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=88)
    print(f"wrote {args.out} ({sheet.width}×{sheet.height}), model {engine.model.source.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
