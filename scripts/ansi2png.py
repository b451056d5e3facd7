#!/usr/bin/env python3
"""Render `tmux capture-pane -e -p` output (text + ANSI SGR colours) to a PNG.

usage: ansi2png.py INPUT.ans OUTPUT.png [COLUMNS]
"""
import re
import sys
import unicodedata

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
FONT_BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
FONT_WIDE = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
SIZE = 16
BG = (24, 24, 30)
FG = (220, 220, 220)

BASE16 = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16),
    (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67),
    (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]


def xterm256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    v = 8 + (n - 232) * 10
    return (v, v, v)


def parse(text):
    """Yields rows of cells (char, fg, bg, bold)."""
    sgr = re.compile(r"\x1b\[([0-9;:]*)m")
    rows = []
    fg, bg, bold, rev = None, None, False, False
    for line in text.split("\n"):
        cells = []
        pos = 0
        for m in list(sgr.finditer(line)) + [None]:
            chunk = line[pos:m.start()] if m else line[pos:]
            for ch in chunk:
                if ch == "\x1b":
                    continue
                f, b = (bg, fg) if rev else (fg, bg)
                cells.append((ch, f, b, bold))
                if unicodedata.east_asian_width(ch) in ("W", "F"):
                    cells.append(("", f, b, bold))
            if not m:
                break
            pos = m.end()
            codes = [int(c) if c else 0 for c in re.split("[;:]", m.group(1) or "0")]
            i = 0
            while i < len(codes):
                c = codes[i]
                if c == 0:
                    fg, bg, bold, rev = None, None, False, False
                elif c == 1:
                    bold = True
                elif c == 22:
                    bold = False
                elif c == 7:
                    rev = True
                elif c == 27:
                    rev = False
                elif 30 <= c <= 37:
                    fg = BASE16[c - 30]
                elif 90 <= c <= 97:
                    fg = BASE16[c - 90 + 8]
                elif c == 39:
                    fg = None
                elif 40 <= c <= 47:
                    bg = BASE16[c - 40]
                elif 100 <= c <= 107:
                    bg = BASE16[c - 100 + 8]
                elif c == 49:
                    bg = None
                elif c in (38, 48) and i + 1 < len(codes):
                    if codes[i + 1] == 5 and i + 2 < len(codes):
                        col = xterm256(codes[i + 2])
                        i += 2
                    elif codes[i + 1] == 2 and i + 4 < len(codes):
                        col = tuple(codes[i + 2:i + 5])
                        i += 4
                    else:
                        col = None
                    if c == 38:
                        fg = col
                    else:
                        bg = col
                i += 1
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def main():
    src, dst = sys.argv[1], sys.argv[2]
    cols = int(sys.argv[3]) if len(sys.argv) > 3 else None
    rows = parse(open(src, encoding="utf-8", errors="replace").read())
    font = ImageFont.truetype(FONT, SIZE)
    bold_font = ImageFont.truetype(FONT_BOLD, SIZE)
    try:
        wide_font = ImageFont.truetype(FONT_WIDE, SIZE)
    except OSError:
        wide_font = font
    cw = int(font.getlength("M"))
    ch = SIZE + 4
    width = cols or max((len(r) for r in rows), default=80)
    img = Image.new("RGB", (width * cw + 16, len(rows) * ch + 16), BG)
    draw = ImageDraw.Draw(img)
    # Backgrounds first: a wide character's glyph spans the next cell, whose
    # background must not paint over its right half.
    for y, row in enumerate(rows):
        for x, (c, fg, bg, bold) in enumerate(row):
            px, py = 8 + x * cw, 8 + y * ch
            if bg:
                draw.rectangle([px, py, px + cw - 1, py + ch - 1], fill=bg)
    for y, row in enumerate(rows):
        for x, (c, fg, bg, bold) in enumerate(row):
            px, py = 8 + x * cw, 8 + y * ch
            if not c or c == " ":
                continue
            if "\u2800" <= c <= "\u28ff":
                # Braille (charts' lines): DejaVu Sans Mono has no glyphs for
                # them, so their 2×4 dots are drawn (bit i: dots 1-3, 7 on the
                # left column top down, 4-6, 8 on the right).
                bits = ord(c) - 0x2800
                spots = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3)]
                r = max(1, cw // 6)
                for i, (dx, dy) in enumerate(spots):
                    if bits >> i & 1:
                        cx = px + cw // 4 + dx * cw // 2
                        cy = py + ch // 8 + dy * ch // 4 + 1
                        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg or FG)
                continue
            wide = unicodedata.east_asian_width(c) in ("W", "F")
            f = wide_font if wide else (bold_font if bold else font)
            if c in "─│┌┐└┘├┤┬┴┼━┃╭╮╯╰" or "\u2580" <= c <= "\u259f":
                # Box and block elements span the whole cell height.
                draw.text((px, py + 1), c, font=f, fill=fg or FG)
            else:
                draw.text((px, py + 2), c, font=f, fill=fg or FG)
    img.save(dst)


if __name__ == "__main__":
    main()
