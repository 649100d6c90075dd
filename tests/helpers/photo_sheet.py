"""Writes a contact sheet of generated photos, to look at them (and at what the app does).

    python -m tests.helpers.photo_sheet [--out photo_sheet.png] [--per 6] [--seed 0]
        [--conditions plain ruled ...] [--prepared]

One row per condition; under each thumbnail its label, writer and ink. --prepared adds
the 28x28 model input beside each thumbnail, with the found region boxed in red.
"""

from __future__ import annotations

import argparse

from PIL import Image, ImageDraw

from tests.helpers.photos import CONDITIONS, load_mnist_test, make_sample

THUMB = 220


def tile(sample, prepared=None) -> Image.Image:
    img = sample.image.convert("RGB")
    scale = THUMB / max(img.size)
    thumb = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)
    if prepared is not None and getattr(prepared, "region", None):
        x0, y0, x1, y1 = prepared.region
        ImageDraw.Draw(thumb).rectangle([x0 * scale, y0 * scale, x1 * scale, y1 * scale], outline=(230, 0, 0), width=2)
    extra = 0 if prepared is None else 92
    out = Image.new("RGB", (THUMB + extra, THUMB + 30), (255, 255, 255))
    out.paste(thumb, ((THUMB - thumb.width) // 2, (THUMB - thumb.height) // 2))
    d = ImageDraw.Draw(out)
    d.text((4, THUMB + 2), f"{sample.label}  {sample.writer}"[:40], fill=(0, 0, 0))
    d.text((4, THUMB + 15), f"{sample.ink}  {img.width}x{img.height}"[:40], fill=(90, 90, 90))
    if prepared is not None:
        inp = Image.fromarray(prepared.pixels).resize((84, 84), Image.Resampling.NEAREST)
        out.paste(inp, (THUMB + 4, 40))
        note = "BLANK" if prepared.blank else (prepared.note or "")[:14]
        d.text((THUMB + 4, 128), note, fill=(200, 0, 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="photo_sheet.png")
    ap.add_argument("--per", type=int, default=6)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS))
    ap.add_argument("--prepared", action="store_true", help="show the model input too")
    ap.add_argument("--sample", nargs=3, metavar=("CONDITION", "INDEX", "PATH"),
                    help="write one image as a JPEG file instead (resources/samples/photo_*.jpg)")
    args = ap.parse_args()
    if args.sample:
        cond, index, path = args.sample
        s = make_sample(cond, int(index), args.seed)
        s.image.convert("RGB").save(path, quality=80, optimize=True)
        print(f"wrote {path}: {cond} #{index}, digit {s.label}, {s.writer}, {s.ink}")
        return
    mnist = load_mnist_test()
    rows = []
    for c in args.conditions:
        tiles = []
        for i in range(args.start, args.start + args.per):
            s = make_sample(c, i, args.seed, mnist)
            p = None
            if args.prepared:
                from app.core.preprocess import prepare

                p = prepare(s.image)
            tiles.append(tile(s, p))
        row = Image.new("RGB", (sum(t.width for t in tiles), tiles[0].height), (255, 255, 255))
        x = 0
        for t in tiles:
            row.paste(t, (x, 0))
            x += t.width
        rows.append((c, row))
    sheet = Image.new("RGB", (max(r.width for _, r in rows) + 90, sum(r.height + 4 for _, r in rows)), (235, 235, 235))
    y = 0
    for c, row in rows:
        ImageDraw.Draw(sheet).text((4, y + 100), c, fill=(0, 0, 0))
        sheet.paste(row, (90, y))
        y += row.height + 4
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main()
