"""References (văn bản được viện dẫn) and assigned tasks with deadlines, from the body text.

References: "<Loại> số <số/ký hiệu> [ngày DD tháng MM năm YYYY | ngày DD/MM/YYYY]", e.g.
"Nghị định số 45/2020/NĐ-CP", "Chỉ thị số 27/CT-TTg ngày 27 tháng 10 năm 2023", "Quyết định số
766/QĐ-TTg", party documents "Chỉ thị số 11-CT/TW", and laws by name with a date ("Luật Tổ chức
chính quyền địa phương ngày 19 tháng 6 năm 2015").

Tasks: sentences with a deadline ("trước ngày 15 tháng 12 năm 2023", "trước ngày 31/12/2023",
"trong tháng 12 năm 2023" → last day of the month, "trong quý III năm 2024" → end of the quarter)
and the body responsible: the organisation the sentence opens with or names after "Giao", else the
heading of the section it sits in ("c) Bộ Thông tin và Truyền thông").
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from pipeline.stages.extract.common import CITED_TYPES, clean_spaces, fold, nfc
from pipeline.stages.extract.layout import page_lines

_TYPES = "|".join(sorted((re.escape(t) for t in CITED_TYPES), key=len, reverse=True))
_NUM = r"\d{1,5}(?:/\d{4})?/[A-ZĐ][A-Za-zĐđ]*(?:-[A-ZĐa-zđ0-9]+)*|\d{1,5}-[A-ZĐ]{1,4}/[A-ZĐ]{1,4}"
_DATE = r"ngày\s+\d{1,2}\s+tháng\s+\d{1,2}\s+năm\s+\d{4}|ngày\s+\d{1,2}/\d{1,2}/\d{4}"
REF_RE = re.compile(rf"(?P<type>{_TYPES})\s+(?:số\s+)?(?P<num>{_NUM})(?:\s+(?P<date>{_DATE}))?")
LAW_RE = re.compile(rf"(?P<type>Luật|Bộ luật|Pháp lệnh)\s+(?P<name>[^,;.:()]{{3,90}}?)\s+(?P<date>{_DATE})")
_DMY_WORDS = re.compile(r"ngày\s+(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})")
_DMY_NUM = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


def _iso(text: str | None) -> str | None:
    if not text:
        return None
    m = _DMY_WORDS.search(text) or _DMY_NUM.search(text)
    if not m:
        return None
    d, mth, y = (int(g) for g in m.groups())
    try:
        return date(y, mth, d).isoformat()
    except ValueError:
        return None


def body_text(pages) -> str:
    """The pages' text as paragraphs joined into running text (lines joined with spaces)."""
    return "\n".join(p["text"] for p in paragraphs(pages))


def paragraphs(pages) -> list[dict]:
    """Paragraphs of the body: a new one where a line starts with a list marker or is indented."""
    out: list[dict] = []
    for page in pages:
        lines = page_lines(page)
        if not lines:
            continue
        wide = [ln for ln in lines if ln.x1 - ln.x0 > 0.5 * page.width]
        margin = min((ln.x0 for ln in wide), default=min(ln.x0 for ln in lines))
        h = sorted(ln.height for ln in lines)[len(lines) // 2]
        for ln in lines:
            text = nfc(ln.text).strip()
            if not text:
                continue
            starts = bool(re.match(r"^([-–+•]|[a-zđ]\)|\d{1,2}[.)]|Điều \d+)", text)) or ln.x0 > margin + 1.5 * h
            if not out or starts or out[-1]["page"] != page.page and ln.x0 > margin + 1.5 * h:
                out.append({"page": page.page, "text": text, "lines": [ln]})
            else:
                out[-1]["text"] = f"{out[-1]['text']} {text}"
                out[-1]["lines"].append(ln)
    for p in out:
        p["text"] = clean_spaces(p["text"])
    return out


def extract_references(pages) -> list[dict]:
    text = body_text(pages)
    refs: list[dict] = []
    seen: set[tuple] = set()
    for m in REF_RE.finditer(text):
        key = (m.group("type"), m.group("num"))
        if key in seen:
            continue
        seen.add(key)
        refs.append({"doc_type": m.group("type"), "number": m.group("num"), "date": _iso(m.group("date")),
                     "text": clean_spaces(m.group(0))})  # fmt: skip
    for m in LAW_RE.finditer(text):
        name = f"{m.group('type')} {m.group('name').strip()}"
        if re.match(r"^\S+\s+số\b", name) or (name, None) in seen:
            continue
        seen.add((name, None))
        refs.append({"doc_type": m.group("type"), "number": None, "date": _iso(m.group("date")),
                     "text": clean_spaces(m.group(0))})  # fmt: skip
    return refs


# --- tasks -----------------------------------------------------------------------------------

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_DEADLINES = [
    (re.compile(r"(?:trước|chậm nhất|hạn chót|không quá)\s+(?:ngày\s+)?(\d{1,2})\s+tháng\s+(\d{1,2})\s+năm\s+(\d{4})"), "dmy"),
    (re.compile(r"(?:trước|chậm nhất|hạn chót|không quá)\s+ngày\s+(\d{1,2})/(\d{1,2})/(\d{4})"), "dmy"),
    (re.compile(r"(?:trong|hoàn thành trong|ngay trong)\s+tháng\s+(\d{1,2})\s*(?:năm|/)\s*(\d{4})"), "my"),
    (re.compile(r"(?:trong|trước hết)\s+quý\s+(I{1,3}|IV|[1-4])\s*(?:năm|/)\s*(\d{4})", re.IGNORECASE), "qy"),
]
_ORG_HEAD = (
    "Bộ", "Sở", "Ủy ban", "UBND", "Văn phòng", "Cục", "Vụ", "Ban", "Trung tâm", "Thanh tra", "Công an", "Phòng",
    "Tổng cục", "Chi cục", "Hội đồng", "Kho bạc", "Bảo hiểm", "Đài", "Các bộ", "Các sở", "Các cơ quan", "Bộ trưởng",
    "Chủ tịch", "Giám đốc", "Thủ trưởng", "Các đơn vị", "Các địa phương", "Tổ công tác",
)  # fmt: skip
_ORG_START = re.compile(rf"^(?:[-–+•]\s*|[a-zđ]\)\s*|\d{{1,2}}[.)]\s*)?((?:{'|'.join(re.escape(o) for o in _ORG_HEAD)})\b[^:;.]*?)"
                        r"(?=\s+(?:chủ trì|có trách nhiệm|khẩn trương|tiếp tục|chịu trách nhiệm|thực hiện|rà soát|"
                        r"xây dựng|hướng dẫn|tổ chức|phối hợp|báo cáo|trình|nghiên cứu|tham mưu|đôn đốc)\b|\s*:|$)")
_GIAO = re.compile(r"\b[Gg]iao\s+(.+?)(?=\s+(?:chủ trì|có trách nhiệm|thực hiện|tổ chức|nghiên cứu|tham mưu)\b|,)")


def _deadline(sentence: str) -> str | None:
    for rx, kind in _DEADLINES:
        m = rx.search(sentence)
        if not m:
            continue
        try:
            if kind == "dmy":
                d, mth, y = (int(g) for g in m.groups())
                return date(y, mth, d).isoformat()
            if kind == "my":
                mth, y = int(m.group(1)), int(m.group(2))
                return date(y, mth, calendar.monthrange(y, mth)[1]).isoformat()
            q, y = _ROMAN[m.group(1).lower()], int(m.group(2))
            mth = 3 * q
            return date(y, mth, calendar.monthrange(y, mth)[1]).isoformat()
        except (ValueError, KeyError):
            continue
    return None


def _org(text: str) -> str | None:
    g = _GIAO.search(text)
    if g and len(g.group(1)) < 90:
        return clean_spaces(g.group(1))
    m = _ORG_START.match(text)
    if m and 3 <= len(m.group(1)) < 90:
        return clean_spaces(m.group(1)).rstrip(" ,")
    return None


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.;])\s+(?=[A-ZĐÀ-Ỹ\-])", text)
    return [p.strip() for p in parts if p.strip()]


def extract_tasks(pages) -> list[dict]:
    tasks: list[dict] = []
    heading: str | None = None
    for para in paragraphs(pages):
        text = para["text"]
        # A section heading naming the body responsible: "c) Bộ Thông tin và Truyền thông".
        hm = re.match(r"^(?:[a-zđ]\)|\d{1,2}[.)]|[IVX]+\.)\s*(.{3,120})$", text)
        if hm and len(text) < 130 and not _deadline(text):
            org = _org(hm.group(1).rstrip(":"))
            if org and fold(org).split()[0] in {fold(o).split()[0] for o in _ORG_HEAD}:
                heading = org
                continue
        para_org = _org(text)
        for sent in _sentences(text):
            deadline = _deadline(sent)
            if not deadline:
                continue
            responsible = _org(sent) or para_org or heading
            tasks.append({"responsible": responsible, "deadline": deadline, "text": sent})
    return tasks
