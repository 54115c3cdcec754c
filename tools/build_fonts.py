"""Build signflow's embedded fonts from DejaVu Sans (run once; output is committed).

    apt-get install fonts-dejavu-core && .venv/bin/python tools/build_fonts.py

Subsets DejaVu Sans (regular, bold) to the Windows-1252 repertoire (Swedish
and the rest of western Europe) and the letters ``signflow.pdf.pages.EXTRA``
adds to it (Polish, Turkish, Bosnian/Croatian/Serbian, Sami, Romanian names),
scales it to 1000 units per em (pyHanko
0.38 spaces 2048-unit fonts wrongly) and renames it "SignflowSans", as the
Bitstream Vera licence asks of modified versions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.ttLib.scaleUpem import scale_upem

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from signflow.pdf.pages import EXTRA  # noqa: E402

SOURCE = Path("/usr/share/fonts/truetype/dejavu")
OUT = Path(__file__).resolve().parent.parent / "signflow" / "fonts"
CHARS = {bytes([b]).decode("cp1252") for b in range(0x20, 0x100)
         if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)} | {"\u2013", "\u2014", "\u00b7", "\u2026"} \
    | set(EXTRA)


def build(src: str, dest: str, style: str) -> None:
    font = TTFont(SOURCE / src)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = ["kern", "liga"]
    sub = subset.Subsetter(options)
    sub.populate(unicodes=[ord(c) for c in CHARS])
    sub.subset(font)
    scale_upem(font, 1000)
    family = "SignflowSans"
    for rec in font["name"].names:
        if rec.nameID in (1, 16):
            rec.string = family
        elif rec.nameID == 4:
            rec.string = f"{family} {style}".strip()
        elif rec.nameID == 6:
            rec.string = f"{family}-{style or 'Regular'}"
        elif rec.nameID == 3:
            rec.string = f"{family}-{style or 'Regular'}-1"
    font.save(OUT / dest)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    build("DejaVuSans.ttf", "SignflowSans.ttf", "")
    build("DejaVuSans-Bold.ttf", "SignflowSans-Bold.ttf", "Bold")
    print("\n".join(f"{p.name}: {p.stat().st_size} bytes" for p in sorted(OUT.glob("*.ttf"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
