"""Render a :class:`~samples.specs.DocumentSpec` as A4 page images laid out per Decree 30/2020/NĐ-CP.

Layout (Appendix I of the decree): margins top/bottom 20 mm, left 30 mm, right 15 mm; a two-column
header table — left: cơ quan chủ quản (upper case), cơ quan ban hành (upper case, bold) with a short
rule, "Số: …" and, for a công văn, the "V/v …" trích yếu; right: Quốc hiệu and Tiêu ngữ (bold, ruled)
and the italic "<Địa danh>, ngày … tháng … năm …". Then (not for a công văn) the type name and the
trích yếu centred in bold, "Kính gửi:" for a công văn, the body (justified, first-line indent, 13–14 pt),
the signature block in the right column (authority prefix, title, signature/seal, name) and "Nơi
nhận:" at the bottom left. Pages ≥ 2 carry their number at the top centre.

:func:`render_document` returns the page images; :func:`render` also returns the text of each page as
laid out (wrapped lines in reading order).
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from .specs import DocumentSpec, addressee_lines, date_line, header_lines, signature_lines, upper_vn

_LIB2 = Path("/usr/share/fonts/truetype/liberation2")
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_NOTO = Path("/usr/share/fonts/truetype/noto")

#: family → (regular, bold, italic, bold italic) candidate files.
FONT_FAMILIES: dict[str, tuple[list[Path], list[Path], list[Path], list[Path]]] = {
    "serif": tuple([_LIB2 / f"LiberationSerif-{s}.ttf"] for s in ("Regular", "Bold", "Italic", "BoldItalic")),
    "sans": tuple([_LIB2 / f"LiberationSans-{s}.ttf"] for s in ("Regular", "Bold", "Italic", "BoldItalic")),
    "dejavu-serif": tuple([_DEJAVU / f"DejaVuSerif{s}.ttf"] for s in ("", "-Bold", "-Italic", "-BoldItalic")),
    "dejavu-sans": tuple([_DEJAVU / f"DejaVuSans{s}.ttf"] for s in ("", "-Bold", "-Oblique", "-BoldOblique")),
    "noto-serif": tuple([_NOTO / f"NotoSerif-{s}.ttf", _LIB2 / f"NotoSerif-{s}.ttf"] for s in ("Regular", "Bold", "Italic", "BoldItalic")),
    "noto-sans": tuple([_NOTO / f"NotoSans-{s}.ttf", _LIB2 / f"NotoSans-{s}.ttf"] for s in ("Regular", "Bold", "Italic", "BoldItalic")),
}

PAGE_SIZES_MM = {"A4": (210.0, 297.0)}
MARGINS_MM = dict(top=20.0, bottom=20.0, left=30.0, right=15.0)
INK = (0, 0, 0)


def _first_existing(paths: list[Path]) -> Path | None:
    return next((p for p in paths if p.exists()), None)


def available_fonts() -> list[str]:
    """Font families whose four styles exist on this machine."""
    return [name for name, styles in FONT_FAMILIES.items() if all(_first_existing(s) for s in styles)]


@lru_cache(maxsize=256)
def _font(family: str, style: int, px: int) -> ImageFont.FreeTypeFont:
    path = _first_existing(FONT_FAMILIES[family][style])
    if path is None:
        raise FileNotFoundError(f"font family {family!r} style {style} not installed")
    return ImageFont.truetype(str(path), px)


REG, BOLD, ITAL, BOLDITAL = 0, 1, 2, 3


@dataclass
class Rendered:
    pages: list[Image.Image]
    page_texts: list[str]
    font: str
    dpi: int

    @property
    def text(self) -> str:
        return "\n".join(self.page_texts)


@dataclass
class _Page:
    img: Image.Image
    draw: ImageDraw.ImageDraw
    lines: list[str] = field(default_factory=list)


class _Layout:
    def __init__(self, family: str, dpi: int, page_size: str, body_pt: float, seed: int):
        self.family, self.dpi, self.body_pt = family, dpi, body_pt
        wmm, hmm = PAGE_SIZES_MM[page_size]
        self.W, self.H = round(self.mm(wmm)), round(self.mm(hmm))
        self.left = self.mm(MARGINS_MM["left"])
        self.right = self.W - self.mm(MARGINS_MM["right"])
        self.top = self.mm(MARGINS_MM["top"])
        self.bottom = self.H - self.mm(MARGINS_MM["bottom"])
        self.pages: list[_Page] = []
        self.y = self.top
        self.rng = random.Random(seed)
        self.new_page()

    # units
    def mm(self, v: float) -> float:
        return v * self.dpi / 25.4

    def pt(self, v: float) -> float:
        return v * self.dpi / 72.0

    def font(self, style: int, pt: float) -> ImageFont.FreeTypeFont:
        return _font(self.family, style, max(6, round(self.pt(pt))))

    @property
    def page(self) -> _Page:
        return self.pages[-1]

    def new_page(self) -> None:
        img = Image.new("RGB", (self.W, self.H), (255, 255, 255))
        self.pages.append(_Page(img, ImageDraw.Draw(img)))
        self.y = self.top
        n = len(self.pages)
        if n >= 2:
            f = self.font(REG, 13)
            s = str(n)
            w = f.getlength(s)
            asc = f.getmetrics()[0]
            self.page.draw.text(((self.W - w) / 2, self.mm(10) + asc), s, font=f, fill=INK, anchor="ls")
            self.page.lines.append(s)

    # text primitives
    def line_h(self, f: ImageFont.FreeTypeFont, spacing: float = 1.2) -> float:
        return f.size * spacing

    def draw_str(self, x: float, y: float, s: str, f: ImageFont.FreeTypeFont, fill=INK) -> None:
        """Draw ``s`` with its line box top at ``y``."""
        asc = f.getmetrics()[0]
        self.page.draw.text((x, y + asc), s, font=f, fill=fill, anchor="ls")

    def centered(self, cx: float, y: float, s: str, f: ImageFont.FreeTypeFont) -> tuple[float, float]:
        w = f.getlength(s)
        self.draw_str(cx - w / 2, y, s, f)
        return cx - w / 2, w

    def rule(self, cx: float, y: float, width: float, thick: float | None = None) -> None:
        t = max(1, round(thick or self.pt(0.6)))
        self.page.draw.rectangle([cx - width / 2, y, cx + width / 2, y + t - 1], fill=INK)

    @staticmethod
    def wrap(words: list[tuple[str, ImageFont.FreeTypeFont]], width: float, first_indent: float = 0.0,
             indent: float = 0.0) -> list[list[tuple[str, ImageFont.FreeTypeFont]]]:
        lines: list[list[tuple[str, ImageFont.FreeTypeFont]]] = []
        cur: list[tuple[str, ImageFont.FreeTypeFont]] = []
        cur_w = 0.0
        avail = width - first_indent
        for w, f in words:
            ww = f.getlength(w)
            sp = f.getlength(" ") if cur else 0.0
            if cur and cur_w + sp + ww > avail:
                lines.append(cur)
                cur, cur_w = [], 0.0
                avail = width - indent
                sp = 0.0
            cur.append((w, f))
            cur_w += sp + ww
        if cur:
            lines.append(cur)
        return lines

    def wrap_text(self, text: str, f: ImageFont.FreeTypeFont, width: float) -> list[str]:
        if f.getlength(text) <= width:
            return [text]
        return [" ".join(w for w, _ in ln) for ln in self.wrap([(w, f) for w in text.split()], width)]


def _issuer_lines(name: str) -> list[str]:
    """Upper-case issuer name split like printed headers ('ỦY BAN NHÂN DÂN' / 'THÀNH PHỐ HỒ CHÍ MINH')."""
    up = upper_vn(name)
    for head in ("ỦY BAN NHÂN DÂN ", "HỘI ĐỒNG NHÂN DÂN "):
        if up.startswith(head) and len(up) > len(head):
            return [head.strip(), up[len(head):]]
    return [up]


_ARTICLE = re.compile(r"^(Điều\s+\d+\.)\s")


def _seed_for(spec: DocumentSpec) -> int:
    return int(hashlib.sha256(f"{spec.number}|{spec.date}".encode()).hexdigest()[:12], 16)


def render(spec: DocumentSpec, *, font: str = "serif", dpi: int = 300, page_size: str = "A4", body_pt: float = 14.0,
           seal: bool = True, signature: bool = True) -> Rendered:
    """Lay ``spec`` out; returns page images (RGB, white paper) and the text of each page."""
    L = _Layout(font, dpi, page_size, body_pt, _seed_for(spec))
    text_w = L.right - L.left
    col_l_w = text_w * 0.43
    col_r_x = L.left + col_l_w
    col_r_w = L.right - col_r_x
    cx_l = L.left + col_l_w / 2
    cx_r = col_r_x + col_r_w / 2
    h = header_lines(spec)

    # --- left header column: issuer block
    y = L.top
    f_parent = L.font(REG, 12.5)
    f_issuer = L.font(BOLD, 12.5)
    left_texts: list[str] = []
    if spec.issuer_parent:
        parent = upper_vn(spec.issuer_parent)
        parent_lines = [parent]
        while f_parent.getlength(parent) > col_l_w - L.mm(2) and f_parent.size > L.pt(11):
            f_parent = _font(font, REG, f_parent.size - 1)
        if f_parent.getlength(parent) > col_l_w - L.mm(2):
            parent_lines = _issuer_lines(spec.issuer_parent)
        for ln in parent_lines:
            for s in L.wrap_text(ln, f_parent, col_l_w - L.mm(2)):
                L.centered(cx_l, y, s, f_parent)
                left_texts.append(s)
                y += L.line_h(f_parent, 1.15)
    issuer_w = 0.0
    for ln in _issuer_lines(spec.issuer):
        for s in L.wrap_text(ln, f_issuer, col_l_w - L.mm(2)):
            _, w = L.centered(cx_l, y, s, f_issuer)
            issuer_w = max(issuer_w, w)
            left_texts.append(s)
            y += L.line_h(f_issuer, 1.15)
    y += L.pt(2)
    L.rule(cx_l, y, max(L.mm(15), issuer_w * 0.4))
    y_left = y + L.pt(4)

    # --- right header column: national title
    y = L.top
    f_qh = L.font(BOLD, 12.5)
    qh = h["right"][0]
    while f_qh.getlength(qh) > col_r_w - L.mm(1) and f_qh.size > 10:
        f_qh = _font(font, BOLD, f_qh.size - 1)
    L.centered(cx_r, y, qh, f_qh)
    y += L.line_h(f_qh, 1.2)
    f_tn = L.font(BOLD, 13.5)
    tn = h["right"][1]
    _, tn_w = L.centered(cx_r, y, tn, f_tn)
    y += L.line_h(f_tn, 1.15) + L.pt(1)
    L.rule(cx_r, y, tn_w)
    y_right = y + L.pt(4)

    # --- row 2: "Số:" (left) and place/date (right) on one line
    y = max(y_left, y_right) + L.pt(6)
    f_no = L.font(REG, 13)
    no = f"Số: {spec.number}"
    L.centered(cx_l, y, no, f_no)
    f_date = L.font(ITAL, 13.5)
    dl = date_line(spec)
    while f_date.getlength(dl) > col_r_w and f_date.size > 10:
        f_date = _font(font, ITAL, f_date.size - 1)
    L.centered(cx_r, y, dl, f_date)
    y += L.line_h(f_no, 1.25)
    page_lines = left_texts + [qh, tn, no, dl]
    if spec.is_letter:
        f_vv = L.font(REG, 12)
        for s in L.wrap_text(f"V/v {spec.subject}", f_vv, col_l_w - L.mm(4)):
            L.centered(cx_l, y, s, f_vv)
            page_lines.append(s)
            y += L.line_h(f_vv, 1.15)
    L.page.lines.extend(page_lines)

    # --- title block (not for công văn)
    f_body = L.font(REG, body_pt)
    body_lh = L.line_h(f_body, 1.22)
    para_gap = L.pt(6)
    if not spec.is_letter:
        y += L.mm(8)
        f_t = L.font(BOLD, 14)
        s = h["title"][0]
        L.centered((L.left + L.right) / 2, y, s, f_t)
        L.page.lines.append(s)
        y += L.line_h(f_t, 1.25)
        sub_w = 0.0
        for s in L.wrap_text(spec.subject, f_t, text_w * 0.82):
            _, w = L.centered((L.left + L.right) / 2, y, s, f_t)
            sub_w = max(sub_w, w)
            L.page.lines.append(s)
            y += L.line_h(f_t, 1.2)
        y += L.pt(2)
        L.rule((L.left + L.right) / 2, y, max(L.mm(20), min(sub_w, text_w * 0.3)))
        y += L.mm(6)
    else:
        y += L.mm(7)

    # --- Kính gửi (công văn)
    ag = addressee_lines(spec)
    if ag:
        f_k = f_body
        if len(ag) == 1:
            for s in L.wrap_text(ag[0], f_k, text_w * 0.8):
                L.centered((L.left + L.right) / 2, y, s, f_k)
                L.page.lines.append(s)
                y += body_lh
        else:
            x0 = L.left + text_w * 0.22
            kg = "Kính gửi: "
            L.draw_str(x0, y, kg.strip(), f_k)
            x1 = x0 + f_k.getlength(kg)
            first = True
            for item in ag[1:]:
                for s in L.wrap_text(item, f_k, L.right - x1):
                    L.draw_str(x1, y, s, f_k)
                    L.page.lines.append(f"{kg.strip()} {s}" if first else s)
                    first = False
                    y += body_lh
        y += L.mm(4)
    L.y = y

    # --- body
    indent = L.mm(12.7)
    for para in spec.body:
        para = para.strip()
        if not para:
            continue
        letters = [c for c in para if c.isalpha()]
        if len(para) <= 40 and letters and all(c.isupper() for c in letters):
            f_h = L.font(BOLD, body_pt)
            if L.y + body_lh > L.bottom:
                L.new_page()
            L.y += L.pt(4)
            L.centered((L.left + L.right) / 2, L.y, para, f_h)
            L.page.lines.append(para)
            L.y += body_lh + para_gap
            continue
        words: list[tuple[str, ImageFont.FreeTypeFont]] = []
        m = _ARTICLE.match(para)
        rest = para
        if m:
            f_b = L.font(BOLD, body_pt)
            words += [(w, f_b) for w in m.group(1).split()]
            rest = para[m.end():]
        words += [(w, f_body) for w in rest.split()]
        lines = L.wrap(words, text_w, first_indent=indent)
        for i, ln in enumerate(lines):
            if L.y + body_lh > L.bottom:
                L.new_page()
            x = L.left + (indent if i == 0 else 0.0)
            last = i == len(lines) - 1
            natural = sum(f.getlength(w) for w, f in ln)
            spaces = len(ln) - 1
            base_sp = f_body.getlength(" ")
            avail = L.right - x
            gap = base_sp
            if not last and spaces > 0:
                gap = (avail - natural) / spaces
                gap = min(gap, base_sp * 3.5)
            for w, f in ln:
                L.draw_str(x, L.y, w, f)
                x += f.getlength(w) + gap
            L.page.lines.append(" ".join(w for w, _ in ln))
            L.y += body_lh
        L.y += para_gap

    # --- signature block (right) and Nơi nhận (left)
    f_sig = L.font(BOLD, 13.5)
    sig = signature_lines(spec)
    sig_w = (L.right - L.left) * 0.5
    sig_cx = L.right - sig_w / 2
    sig_wrapped: list[str] = []
    for s in sig:
        sig_wrapped += L.wrap_text(s, f_sig, sig_w)
    sig_gap = L.mm(30)
    sig_h = len(sig_wrapped) * L.line_h(f_sig, 1.2) + sig_gap + L.line_h(f_sig, 1.2)
    f_nn = L.font(BOLDITAL, 12)
    f_it = L.font(REG, 11)
    nn_w = text_w * 0.46
    nn_lines: list[str] = []
    if spec.recipients:
        nn_lines.append("Nơi nhận:")
        for i, r in enumerate(spec.recipients):
            item = f"- {r}{'.' if i == len(spec.recipients) - 1 else ';'}"
            nn_lines += L.wrap_text(item, f_it, nn_w)
    nn_h = L.line_h(f_nn, 1.2) + max(0, len(nn_lines) - 1) * L.line_h(f_it, 1.12)
    need = max(sig_h, nn_h) + L.pt(6)
    if L.y + need > L.bottom:
        L.new_page()
    y0 = L.y + L.pt(6)
    # signature
    y = y0
    for s in sig_wrapped:
        L.centered(sig_cx, y, s, f_sig)
        L.page.lines.append(s)
        y += L.line_h(f_sig, 1.2)
    sig_top = y
    y += sig_gap
    name_y = y
    if seal:
        _draw_seal(L, spec, cx=sig_cx - L.mm(17), cy=sig_top + sig_gap / 2 + L.mm(0.5), font_family=font)
    if signature:
        _draw_signature(L, cx=sig_cx, cy=sig_top + sig_gap * 0.5, w=L.mm(34), h=sig_gap * 0.55)
    L.centered(sig_cx, name_y, spec.signer, f_sig)
    sig_text = [spec.signer]
    # recipients
    y = y0
    nn_text: list[str] = []
    if nn_lines:
        L.draw_str(L.left, y + L.pt(1), nn_lines[0], f_nn)
        nn_text.append(nn_lines[0])
        y += L.line_h(f_nn, 1.25)
        for s in nn_lines[1:]:
            x = L.left if s.startswith("- ") else L.left + f_it.getlength("- ")
            L.draw_str(x, y, s, f_it)
            nn_text.append(s)
            y += L.line_h(f_it, 1.12)
    L.page.lines.extend(sig_text + nn_text)
    return Rendered(pages=[p.img for p in L.pages], page_texts=["\n".join(p.lines) for p in L.pages], font=font, dpi=dpi)


def render_document(spec: DocumentSpec, *, font: str = "serif", dpi: int = 300, page_size: str = "A4",
                    body_pt: float = 14.0, seal: bool = True, signature: bool = True) -> list[Image.Image]:
    """Page images (RGB, white paper) of ``spec`` laid out per Decree 30/2020/NĐ-CP."""
    return render(spec, font=font, dpi=dpi, page_size=page_size, body_pt=body_pt, seal=seal, signature=signature).pages


# --- seal and signature ---------------------------------------------------------------------

SEAL_RED = (205, 30, 35)


def _draw_seal(L: _Layout, spec: DocumentSpec, cx: float, cy: float, font_family: str) -> None:
    """A round red seal (con dấu): double ring, agency name around, star in the centre; multiplied on."""
    R = L.mm(15.5)
    size = int(2 * R + 8)
    layer = Image.new("L", (size, size), 0)  # ink coverage
    d = ImageDraw.Draw(layer)
    c = size / 2
    w_out = max(2, round(L.mm(0.9)))
    d.ellipse([c - R, c - R, c + R, c + R], outline=255, width=w_out)
    r_in = R * 0.62
    d.ellipse([c - r_in, c - r_in, c + r_in, c + r_in], outline=255, width=max(1, round(L.mm(0.45))))
    # star
    rs, ri = r_in * 0.45, r_in * 0.18
    pts = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        r = rs if k % 2 == 0 else ri
        pts.append((c + r * math.cos(a), c + r * math.sin(a)))
    d.polygon(pts, fill=255)
    # ring text
    text = upper_vn(spec.issuer)
    if spec.issuer_parent and len(text) < 22:
        text = f"{upper_vn(spec.issuer_parent)} * {text}"
    text = f"{text} *"
    ring_r = (R + r_in) / 2
    fsize = max(8, round((R - r_in) * 0.62))
    fam = "sans" if "sans" in FONT_FAMILIES and _first_existing(FONT_FAMILIES["sans"][BOLD]) else font_family
    f = _font(fam, BOLD, fsize)
    total = sum(f.getlength(ch) for ch in text)
    circ = 2 * math.pi * ring_r * 0.97
    if total > circ:
        f = _font(fam, BOLD, max(6, int(fsize * circ / total)))
        total = sum(f.getlength(ch) for ch in text)
    spacing = (circ - total) / max(1, len(text))
    ang = -math.pi / 2 - (total + spacing * len(text)) / ring_r / 2  # centred on the top
    for ch in text:
        cw = f.getlength(ch)
        a = ang + (cw / 2) / ring_r
        if ch.strip():
            tile = Image.new("L", (int(f.size * 2), int(f.size * 2)), 0)
            ImageDraw.Draw(tile).text((tile.width / 2, tile.height / 2), ch, font=f, fill=255, anchor="mm")
            rot = tile.rotate(-math.degrees(a + math.pi / 2), resample=Image.BICUBIC)
            px = c + ring_r * math.cos(a) - rot.width / 2
            py = c + ring_r * math.sin(a) - rot.height / 2
            layer.paste(255, (int(px), int(py)), rot)
        ang += (cw + spacing) / ring_r
    # uneven ink
    rng = L.rng
    import numpy as np

    cov = np.asarray(layer, dtype=np.float32) / 255.0
    noise = np.random.default_rng(rng.randrange(1 << 30)).uniform(0.7, 1.0, cov.shape).astype(np.float32)
    cov = cov * noise * rng.uniform(0.85, 1.0)
    page = L.page.img
    x0, y0 = int(cx - size / 2), int(cy - size / 2)
    box = (max(0, x0), max(0, y0), min(page.width, x0 + size), min(page.height, y0 + size))
    if box[2] <= box[0] or box[3] <= box[1]:
        return
    region = np.asarray(page.crop(box), dtype=np.float32)
    cv = cov[box[1] - y0: box[3] - y0, box[0] - x0: box[2] - x0, None]
    ink = np.array(SEAL_RED, dtype=np.float32)
    out = region * (1 - cv) + (region * ink / 255.0) * cv  # multiply blend
    page.paste(Image.fromarray(out.clip(0, 255).astype("uint8")), box[:2])
    L.page.draw = ImageDraw.Draw(page)


def _draw_signature(L: _Layout, cx: float, cy: float, w: float, h: float) -> None:
    """A scribbled handwritten signature in dark blue ink."""
    rng = L.rng
    d = L.page.draw
    ink = (25, 35, 110)
    width = max(2, round(L.mm(0.45)))
    x = cx - w / 2
    pts = []
    n = rng.randint(5, 8)
    for k in range(n * 12):
        t = k / (n * 12 - 1)
        xx = x + t * w + math.sin(t * math.pi * n * 2) * w * 0.04
        yy = cy + math.sin(t * math.pi * n + rng.uniform(-0.3, 0.3)) * h * 0.35 * (1 - 0.5 * t) + rng.uniform(-1, 1) * L.mm(0.3)
        pts.append((xx, yy))
    d.line(pts, fill=ink, width=width, joint="curve")
    # underline flourish
    fx0 = cx - w * 0.45
    fl = [(fx0 + t * w * 0.95, cy + h * 0.38 - math.sin(t * math.pi) * h * 0.12) for t in [i / 30 for i in range(31)]]
    d.line(fl, fill=ink, width=width, joint="curve")
