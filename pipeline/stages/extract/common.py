"""Shared vocabulary and normalisation for extractors: numbers, dates, document types, capitalisation.

Everything here is tolerant of Tesseract's typical errors on Vietnamese administrative scans:
diacritics changed or dropped ("CHÍ THỊ" for "CHỈ THỊ", "Sô:" for "Số:"), O↔0 and l/I↔1 in
digits, spaces around "/" and "-" in a number's symbol.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from rapidfuzz import fuzz

#: Tên loại văn bản hành chính (Decree 30/2020/NĐ-CP, Art. 7) with the abbreviation used in
#: the number's symbol (Appendix III). "Công văn" has no type name printed and no abbreviation.
DOC_TYPES: dict[str, str] = {
    "Nghị quyết": "NQ",
    "Quyết định": "QĐ",
    "Chỉ thị": "CT",
    "Quy chế": "QC",
    "Quy định": "QyĐ",
    "Thông cáo": "TC",
    "Thông báo": "TB",
    "Hướng dẫn": "HD",
    "Chương trình": "CTr",
    "Kế hoạch": "KH",
    "Phương án": "PA",
    "Đề án": "ĐA",
    "Dự án": "DA",
    "Báo cáo": "BC",
    "Biên bản": "BB",
    "Tờ trình": "TTr",
    "Hợp đồng": "HĐ",
    "Công điện": "CĐ",
    "Bản ghi nhớ": "GN",
    "Bản thỏa thuận": "TTh",
    "Giấy ủy quyền": "GUQ",
    "Giấy mời": "GM",
    "Giấy giới thiệu": "GGT",
    "Giấy nghỉ phép": "NP",
    "Phiếu gửi": "PG",
    "Phiếu chuyển": "PC",
    "Phiếu báo": "PB",
    "Công văn": "",
}

#: Abbreviation (upper-cased) → type; legal documents cited in texts add their own.
ABBREVIATION_TO_TYPE = {abbr.upper(): name for name, abbr in DOC_TYPES.items() if abbr}
ABBREVIATION_TO_TYPE.update({"GNP": "Giấy nghỉ phép"})  # older Decree 110/2004 symbol

#: Types of legal documents cited in texts (văn bản quy phạm pháp luật and others).
CITED_TYPES = (
    "Hiến pháp", "Bộ luật", "Luật", "Pháp lệnh", "Nghị quyết liên tịch", "Nghị quyết", "Nghị định",
    "Quyết định", "Chỉ thị", "Thông tư liên tịch", "Thông tư", "Công văn", "Văn bản", "Thông báo",
    "Kế hoạch", "Công điện", "Hướng dẫn", "Báo cáo", "Tờ trình", "Đề án", "Chương trình",
)  # fmt: skip


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case and strip diacritics (đ→d) for tolerant matching.

    For NFC Vietnamese text the result has the same length as the input (one base letter per
    character), so match positions in the folded text are positions in the original.
    """
    text = nfc(text).lower().replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def clean_spaces(text: str) -> str:
    return " ".join(text.split())


def uppercase_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(c.isupper() for c in letters) / len(letters)


# --- document types ------------------------------------------------------------------------

_TYPE_KEYS = {fold(name): name for name in DOC_TYPES if name != "Công văn"}


def match_doc_type(line: str, *, min_score: float = 82.0) -> tuple[str, float] | None:
    """The Decree-30 type named by a title line ('CHỈ THỊ', OCR'd 'CHÍ THỊ', 'QUYÉT ĐINH').

    Diacritic-insensitive fuzzy match of the whole line against the type names; returns
    ``(name, score 0–1)`` or None. Lines with more than four words are not title lines.
    """
    folded = clean_spaces(re.sub(r"[^a-z ]", " ", fold(line)))
    if not folded or len(folded.split()) > 4 or len(folded) < 4:
        return None
    best, best_score = None, 0.0
    for key, name in _TYPE_KEYS.items():
        score = fuzz.ratio(folded, key)
        if score > best_score:
            best, best_score = name, score
    if best is None or best_score < min_score:
        return None
    return best, best_score / 100.0


def doc_type_from_title(line: str) -> str | None:
    m = match_doc_type(line)
    return m[0] if m else None


def number_type_abbr(number: str | None) -> str | None:
    """The type abbreviation of a number's symbol ('15/QĐ-UBND' → 'QĐ'; '27/2020/NĐ-CP' → 'NĐ')."""
    if not number or "/" not in number:
        return None
    symbol = number.split("/")[-1]
    return symbol.split("-")[0] if "-" in symbol else None


def doc_type_from_number(number: str | None) -> str | None:
    """The type implied by the symbol of a number: '27/CT-TTg' → 'Chỉ thị'; None for a công văn."""
    abbr = number_type_abbr(number)
    return ABBREVIATION_TO_TYPE.get(abbr.upper()) if abbr else None


def type_matches_number(doc_type: str | None, number: str | None) -> bool | None:
    """Whether the type abbreviation in the number agrees with the type (None: cannot tell)."""
    if not doc_type or not number:
        return None
    implied = doc_type_from_number(number)
    if doc_type == "Công văn":
        return implied is None
    if implied is None:
        return False
    return implied == doc_type


# --- numbers -------------------------------------------------------------------------------

_DIGIT_FIX = str.maketrans({"O": "0", "o": "0", "Q": "0", "D": "0", "l": "1", "I": "1", "|": "1", "i": "1",
                            "!": "1", "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2", "g": "9"})
_SO = r"(?<![A-Za-zÀ-ỹ])S[ốôốồổỗộoóòỏõọơớờởỡợ06ö]\s*[:;.,]?"
_NUM = r"[0-9OoIl|]{1,6}"
_SYM_PART = r"[A-ZĐa-zđ0-9]{1,10}"
_SYMBOL = rf"(?:[0-9OoIl]{{4}}\s*/\s*)?{_SYM_PART}(?:\s*[-–]\s*{_SYM_PART})*"
NUMBER_RE = re.compile(rf"{_SO}\s*({_NUM})\s*/\s*({_SYMBOL})")
#: "Số: ... /CT-UBND" with no printed digits (handwritten numbers read as '#', '...', nothing).
BLANK_NUMBER_RE = re.compile(rf"{_SO}\s*([^\s/]{{0,5}})\s*/\s*({_SYMBOL})")


@dataclass
class NumberMatch:
    number: str | None  # '516/TTg-KSTT'; None when no digits are printed
    symbol: str  # 'TTg-KSTT'
    start: int
    end: int
    repaired: bool = False  # digits were repaired (O→0, l→1)


def _fix_digits(s: str) -> str:
    return s.translate(_DIGIT_FIX)


def _clean_symbol(sym: str) -> str:
    sym = re.sub(r"\s+", "", sym).replace("–", "-").strip("-")
    parts = sym.split("/")
    if len(parts) == 2:  # '2020/NĐ-CP'
        parts[0] = _fix_digits(parts[0])
    return "/".join(parts)


def find_number(text: str) -> NumberMatch | None:
    """'Số: 5898/UBND-KSTT' (and OCR variants) in a line → the number; blank number → number=None."""
    text = nfc(text).replace("Ð", "Đ").replace("ð", "đ")  # Icelandic eth for Đ
    text = re.sub(r"Đ{2,}", "Đ", text)
    m = NUMBER_RE.search(text)
    if m:
        raw = m.group(1)
        digits = _fix_digits(raw)
        if digits.isdigit() and int(digits) > 0:
            sym = _clean_symbol(m.group(2))
            return NumberMatch(f"{int(digits)}/{sym}" if not digits.startswith("0") else f"{digits}/{sym}",
                               sym, m.start(), m.end(), repaired=digits != raw)
    b = BLANK_NUMBER_RE.search(text)
    if b and not b.group(1).isdigit():
        return NumberMatch(None, _clean_symbol(b.group(2)), b.start(), b.end())
    return None


# --- dates ---------------------------------------------------------------------------------

_DATE_FOLDED = re.compile(
    r"ngay\s*[:.]?\s*([0-9oil|]{1,2}|[^\s]{1,3}?)\s*[,.]?\s*thang\s*[:.]?\s*([0-9oil|]{1,2}|[^\s]{1,3}?)\s*[,.]?\s*nam\s*[:.]?\s*([0-9oil|]{4})"
)
_DATE_BLANK_DAY = re.compile(r"ngay\s*[:.]?\s*[^\w\s]{0,2}\s*thang\s*[:.]?\s*([0-9oil|]{1,2})\s*[,.]?\s*nam\s*[:.]?\s*([0-9oil|]{4})")
_DATE_NUMERIC = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b")


@dataclass
class DateMatch:
    value: date | None  # None when the printed values do not make a date
    start: int
    end: int
    problem: str | None = None  # why value is None ('day 80 is not a valid day', ...)
    raw: str = ""


def find_date(text: str, *, numeric: bool = False) -> DateMatch | None:
    """'ngày 22 tháng 4 năm 2021' (OCR-tolerant, diacritics optional) in ``text``."""
    text = nfc(text)
    f = fold(text)
    m = _DATE_FOLDED.search(f)
    blank = _DATE_BLANK_DAY.search(f)
    if blank and (not m or blank.start() <= m.start()):
        # 'ngày   tháng 01 năm 2025': the day is written in by hand at registration; Tesseract
        # drops the ink or reads it as noise. The month and year are printed.
        raw = text[blank.start() : blank.end()]
        return DateMatch(None, blank.start(), blank.end(), "the day is not printed (handwritten?)", raw)
    if m:
        parts = [_fix_digits(g) for g in m.groups()]
        raw = text[m.start() : m.end()]
        if not all(p.isdigit() for p in parts):
            return DateMatch(None, m.start(), m.end(), "day or month is not printed digits (handwritten?)", raw)
        d, mth, y = (int(p) for p in parts)
        try:
            return DateMatch(date(y, mth, d), m.start(), m.end(), None, raw)
        except ValueError as exc:
            return DateMatch(None, m.start(), m.end(), f"'{raw}' is not a valid date ({exc})", raw)
    if numeric:
        n = _DATE_NUMERIC.search(text)
        if n:
            d, mth, y = (int(g) for g in n.groups())
            try:
                return DateMatch(date(y, mth, d), n.start(), n.end(), None, n.group(0))
            except ValueError as exc:
                return DateMatch(None, n.start(), n.end(), str(exc), n.group(0))
    return None


def parse_vietnamese_date(text: str) -> date | None:
    """'ngày 22 tháng 4 năm 2021' or '22/04/2021' → date(2021, 4, 22); None if absent/invalid."""
    m = find_date(text, numeric=True)
    return m.value if m else None


# --- capitalisation --------------------------------------------------------------------------

#: Acronyms printed in headers, expanded to the full name (as the record stores it).
ACRONYMS = {
    "ubnd": "ủy ban nhân dân",
    "hđnd": "hội đồng nhân dân",
    "hdnd": "hội đồng nhân dân",
    "tp.": "thành phố",
    "tp": "thành phố",
}
#: Administrative-unit words: the proper name after them capitalises every syllable.
_UNIT_WORDS = ("tỉnh", "thành phố", "quận", "huyện", "thị xã", "xã", "phường", "thị trấn")
#: Agency words: the specific name after them capitalises its first syllable (and after 'và', ',').
_AGENCY_WORDS = (
    "bộ", "sở", "phòng", "cục", "vụ", "ban", "tổng cục", "viện", "trung tâm", "văn phòng", "thanh tra",
    "chi cục", "ủy ban", "hội đồng", "trường", "bệnh viện", "công an", "kho bạc nhà nước", "kho bạc",
    "ngân hàng", "bảo hiểm xã hội", "tòa án nhân dân", "viện kiểm sát nhân dân", "đài", "báo",
    "học viện", "ban quản lý", "chi nhánh", "cổng", "tổng công ty", "công ty", "hội", "đoàn", "tổ",
)  # fmt: skip
#: Fixed names (whole phrases) with their capitalisation.
_FIXED = {
    "thủ tướng chính phủ": "Thủ tướng Chính phủ",
    "chính phủ": "Chính phủ",
    "ủy ban nhân dân": "Ủy ban nhân dân",
    "hội đồng nhân dân": "Hội đồng nhân dân",
    "quốc hội": "Quốc hội",
    "chủ tịch nước": "Chủ tịch nước",
    "việt nam": "Việt Nam",
    "trung ương": "Trung ương",
    "thành phố hồ chí minh": "Thành phố Hồ Chí Minh",
    "mặt trận tổ quốc việt nam": "Mặt trận Tổ quốc Việt Nam",
}
_FIXED_SORTED = sorted(_FIXED, key=lambda k: -len(k.split()))
_UNITS_SORTED = sorted(_UNIT_WORDS, key=lambda k: -len(k.split()))
_AGENCY_SORTED = sorted(_AGENCY_WORDS, key=lambda k: -len(k.split()))


def _cap(w: str) -> str:
    return w[:1].upper() + w[1:] if w else w


_FOLD_CACHE: dict[str, list[str]] = {}


def _starts(words: list[str], i: int, phrase: str) -> bool:
    """``words[i:]`` starts with ``phrase``, diacritic-insensitively (OCR drops or changes marks)."""
    p = _FOLD_CACHE.get(phrase)
    if p is None:
        p = _FOLD_CACHE[phrase] = fold(phrase).split()
    return [fold(w) for w in words[i : i + len(p)]] == p


#: Province-level names (for restoring diacritics OCR dropped in a place name).
PROVINCES = (
    "Hà Nội", "Hồ Chí Minh", "Hải Phòng", "Đà Nẵng", "Cần Thơ", "An Giang", "Bà Rịa - Vũng Tàu", "Bắc Giang",
    "Bắc Kạn", "Bạc Liêu", "Bắc Ninh", "Bến Tre", "Bình Định", "Bình Dương", "Bình Phước", "Bình Thuận", "Cà Mau",
    "Cao Bằng", "Đắk Lắk", "Đắk Nông", "Điện Biên", "Đồng Nai", "Đồng Tháp", "Gia Lai", "Hà Giang", "Hà Nam",
    "Hà Tĩnh", "Hải Dương", "Hậu Giang", "Hòa Bình", "Hưng Yên", "Khánh Hòa", "Kiên Giang", "Kon Tum", "Lai Châu",
    "Lâm Đồng", "Lạng Sơn", "Lào Cai", "Long An", "Nam Định", "Nghệ An", "Ninh Bình", "Ninh Thuận", "Phú Thọ",
    "Phú Yên", "Quảng Bình", "Quảng Nam", "Quảng Ngãi", "Quảng Ninh", "Quảng Trị", "Sóc Trăng", "Sơn La",
    "Tây Ninh", "Thái Bình", "Thái Nguyên", "Thanh Hóa", "Thừa Thiên Huế", "Tiền Giang", "Trà Vinh",
    "Tuyên Quang", "Vĩnh Long", "Vĩnh Phúc", "Yên Bái", "Huế",
)  # fmt: skip
_PROVINCE_BY_FOLD = {fold(p): p for p in PROVINCES}


def restore_place(name: str) -> str:
    """'QUANG NGAI' → 'Quảng Ngãi' (known province names); otherwise every syllable capitalised."""
    known = _PROVINCE_BY_FOLD.get(clean_spaces(fold(name)))
    if known:
        return known
    return " ".join(_cap(w.lower()) for w in name.split())


def _normalise_upper(text: str) -> list[str]:
    text = clean_spaces(nfc(text)).replace("UỶ", "ỦY").replace("Uỷ", "Ủy").replace("uỷ", "ủy")
    words: list[str] = []
    for w in text.lower().split(" "):
        w = {"hoà": "hòa", "thoả": "thỏa", "khoá": "khóa"}.get(w, w)
        words.extend(ACRONYMS.get(w, w).split(" "))
    return [w for w in words if w]


def proper_case_agency(text: str) -> str:
    """Vietnamese capitalisation of an agency name printed in capitals (Decree 30, Appendix II).

    'ỦY BAN NHÂN DÂN / TỈNH QUẢNG NGÃI' → 'Ủy ban nhân dân tỉnh Quảng Ngãi';
    'SỞ KẾ HOẠCH VÀ ĐẦU TƯ' → 'Sở Kế hoạch và Đầu tư'; 'UBND TỈNH BÌNH DƯƠNG' → 'Ủy ban nhân dân
    tỉnh Bình Dương'; 'ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH' → '… Thành phố Hồ Chí Minh';
    'CỤC KIỂM SOÁT THỦ TỤC HÀNH CHÍNH' → 'Cục Kiểm soát thủ tục hành chính'.
    Rules: fixed names (:data:`_FIXED`) keep their form; after an administrative-unit word
    (tỉnh, huyện, …) every syllable of the place name is capitalised; after an agency word (Bộ,
    Sở, Cục, …) the first syllable of the specific name and the first after 'và' / ',' / '-'.
    """
    words = _normalise_upper(text)
    out: list[str] = []
    i = 0
    mode = "start"  # 'start' | 'free' (after a fixed name) | 'name' (agency's specific name) | 'place'
    cap_next = False
    while i < len(words):
        fixed = next((k for k in _FIXED_SORTED if _starts(words, i, k)), None)
        if fixed:
            out.append(_FIXED[fixed])
            i += len(fixed.split())
            mode, cap_next = "free", False
            continue
        if mode != "place":
            unit = next((u for u in _UNITS_SORTED if _starts(words, i, u)), None)
            n = len(unit.split()) if unit else 0
            if unit and i + n < len(words) and not (unit == "xã" and words[i + 1] == "hội"):
                out.append(unit if out else _cap(unit))
                i += n
                mode = "place"
                continue
            agency = next((a for a in _AGENCY_SORTED if _starts(words, i, a)), None)
            if agency and (mode in ("start", "free") or cap_next):
                out.append(_cap(agency))
                i += len(agency.split())
                mode, cap_next = "name", True
                continue
        w = words[i]
        if mode == "place":
            j = i
            while j < len(words) and not words[j].endswith(","):
                j += 1
            j = min(j + 1, len(words))
            out.append(restore_place(" ".join(words[i:j]).rstrip(",")) + ("," if words[j - 1].endswith(",") else ""))
            i = j
            continue
        elif mode == "name":
            if w in ("và", "-", "–", "&"):
                out.append(w)
                cap_next = True
            else:
                out.append(_cap(w) if cap_next else w)
                cap_next = w.endswith(",")
        else:
            out.append(_cap(w) if not out else w)
        i += 1
    return " ".join(out)


# Backwards-compatible name.
sentence_case_name = proper_case_agency

_HEAD_TITLES = (
    "thủ tướng", "chủ tịch", "chủ nhiệm", "giám đốc", "bộ trưởng", "thứ trưởng", "cục trưởng", "vụ trưởng",
    "tổng cục trưởng", "viện trưởng", "chánh văn phòng", "chánh thanh tra", "chánh án", "trưởng ban",
    "trưởng phòng", "hiệu trưởng", "tổng giám đốc", "chủ tịch nước", "tổng thư ký", "trưởng đoàn",
    "chi cục trưởng", "trưởng công an", "giám đốc sở", "tổ trưởng", "thư ký", "kế toán trưởng",
)  # fmt: skip
_TITLE_FIXED = {"chánh văn phòng": "Chánh Văn phòng", "chánh thanh tra": "Chánh Thanh tra"}


def proper_case_title(text: str) -> str:
    """'PHÓ CHỦ TỊCH' → 'Phó Chủ tịch'; 'BỘ TRƯỞNG, CHỦ NHIỆM' → 'Bộ trưởng, Chủ nhiệm';
    'VỤ TRƯỞNG VỤ CẢI CÁCH HÀNH CHÍNH' → 'Vụ trưởng Vụ Cải cách hành chính';
    'CHÁNH VĂN PHÒNG' → 'Chánh Văn phòng'.

    A title is 'Phó'? + head title, optionally followed by the agency it heads (proper-cased as an
    agency); titles joined by ',' each start with a capital.
    """
    parts = [p.strip() for p in clean_spaces(nfc(text)).split(",")]
    out = []
    for part in parts:
        words = part.lower().split()
        res: list[str] = []
        i = 0
        if words and fold(words[0]) == "pho":
            res.append("Phó")
            i = 1
        head = next((h for h in sorted(_HEAD_TITLES, key=lambda h: -len(h.split())) if _starts(words, i, h)), None)
        if head:
            n = len(head.split())
            res.append(_TITLE_FIXED.get(head) or _cap(head))
            i += n
            rest = " ".join(words[i:])
            if rest:
                res.append(proper_case_agency(rest))
        else:
            res.append(_cap(" ".join(words[i:])))
        out.append(" ".join(r for r in res if r))
    title = ", ".join(p for p in out if p)
    return title[:1].upper() + title[1:]


sentence_case_title = proper_case_title


def proper_case_person(name: str) -> str:
    """'NGUYỄN VĂN A' → 'Nguyễn Văn A' (person names capitalise every syllable)."""
    return " ".join(_cap(w.lower()) for w in clean_spaces(nfc(name)).split(" "))


title_case_person = proper_case_person

_NAME_WORD = re.compile(r"^[A-ZĐÀ-Ỹ][a-zđà-ỹ]{0,7}$|^[A-ZĐÀ-Ỹ]{1,8}$")


def looks_like_person(text: str) -> bool:
    """2–6 alphabetic syllables, each capitalised (Title Case or all caps)."""
    words = clean_spaces(nfc(text)).split(" ")
    if not 2 <= len(words) <= 6:
        return False
    if not all(_NAME_WORD.match(w) for w in words):
        return False
    up = [w.isupper() for w in words if len(w) > 1]
    return all(up) or not any(up)


def known_title(text: str) -> bool:
    """Whether ``text`` names a known signer title ('PHÓ CHỦ TỊCH', 'CHÁNH VĂN PHÒNG', …)."""
    f = " " + clean_spaces(re.sub(r"[^a-z ]", " ", fold(text))) + " "
    return any(f" {fold(t)} " in f for t in _HEAD_TITLES)


def match_head_title(text: str, *, min_score: float = 85.0) -> str | None:
    """The chức danh of a signer when the whole line is one ('CHỦU TỊCH' → 'Chủ tịch').

    Diacritic-insensitive fuzzy match of the line against '[Phó] <head title>' (Decree 30,
    Art. 8: the title printed above the signature); None when the line names more than a title
    (an agency after it) or does not match well enough.
    """
    folded = clean_spaces(re.sub(r"[^a-z ]", " ", fold(text)))
    if not folded or len(folded.split()) > 4:
        return None
    best, best_score = None, 0.0
    for head in _HEAD_TITLES:
        for pho in (False, True):
            key = ("pho " if pho else "") + fold(head)
            score = fuzz.ratio(folded, key)
            if score > best_score:
                best, best_score = ("PHÓ " if pho else "") + head.upper(), score
    return proper_case_title(best) if best and best_score >= min_score else None


#: An agency "… tỉnh <X>" names one of :data:`PROVINCES` (the 63 before the 2025 merger, whose
#: names the 34 after it keep, and Huế).
_PROVINCE_FOLDS = {re.sub(r"[^a-z]", "", fold(p)) for p in PROVINCES}


def unknown_province(agency: str) -> str | None:
    """The name after 'tỉnh' in an agency's name when it is no province ('Ủy ban nhân dân tỉnh
    Ngãi': 'Quảng' lost under a stamp), else None."""
    m = re.search(r"(?:^|\s)tỉnh\s+(.+)$", nfc(agency), re.IGNORECASE)
    if not m:
        return None
    name = m.group(1).strip(" .,;")
    return None if re.sub(r"[^a-z]", "", fold(name)) in _PROVINCE_FOLDS else name


#: The deputy of a head title (Decree 30, Appendix I: "KT. <head>" is followed by the deputy's
#: own title). A minister's deputy is a Thứ trưởng; every other head's deputy is "Phó <head>".
_DEPUTY_EXCEPTIONS = {"bộ trưởng": "Thứ trưởng"}


def deputy_title(head: str) -> str:
    """'Chủ tịch' → 'Phó Chủ tịch', 'Chánh Văn phòng' → 'Phó Chánh Văn phòng',
    'Bộ trưởng' → 'Thứ trưởng' (the title of whoever signs under "KT. <head>")."""
    head = clean_spaces(nfc(head))
    low = head.lower()
    for key, deputy in _DEPUTY_EXCEPTIONS.items():
        if low == key or low.startswith(key + " "):
            return deputy + head[len(key):]
    return "Phó " + head[:1].upper() + head[1:] if not low.startswith("phó ") else head


def is_deputy_title(title: str) -> bool:
    f = fold(title)
    return f.startswith("pho ") or f.startswith("thu truong")


def join_name_fragments(text: str) -> str:
    """'N gô Minh Nghĩa' → 'Ngô Minh Nghĩa': OCR splits a syllable after its capital letter.

    A syllable of a Vietnamese personal name (họ, tên đệm, tên) always starts with a capital, so
    a lower-case fragment right after a lone capital belongs to it."""
    return re.sub(r"(?<![\wÀ-ỹ])([A-ZĐÀ-Ỹ]) ([a-zđà-ỹ]{1,6})(?![\wÀ-ỹ])", r"\1\2", text)


#: Common Vietnamese surnames: OCR often changes their marks ('Nguyên', 'Định').
SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
            "Dương", "Lý", "Trịnh", "Đinh", "Lâm", "Mai", "Trương", "Đoàn", "Hà", "Cao", "Lương", "Tạ", "Tô", "Lưu",
            # less common ones (folded, none collides with a frequent given name: no 'Văn', 'Từ', 'La')
            "Phùng", "Quách", "Kiều", "Thái", "Châu", "Tăng", "Khúc", "Lại", "Đàm", "Mạc", "Thân", "Triệu", "Vương",
            "Doãn", "Hứa", "Chu", "Nông", "Lò", "Bạch", "Tôn", "Quan", "Lục", "Âu", "Tống", "Khổng", "Hầu", "Đào",
            "Diệp", "Cù", "Nghiêm", "Đồng", "Tiêu", "Ninh", "Thạch", "Kha", "Mẫn", "Phí", "Viên", "Lăng", "Ứng")  # fmt: skip
_SURNAME_BY_FOLD = {fold(s): s for s in SURNAMES}


def restore_surname(name: str) -> str:
    words = name.split(" ")
    if words and fold(words[0]) in _SURNAME_BY_FOLD:
        words[0] = _SURNAME_BY_FOLD[fold(words[0])]
    return " ".join(words)


_YEAR_AFTER_NAM = re.compile(r"(?<![\wÀ-ỹ])(năm|Năm|NĂM) ([0-9OoIlzZSsBgi|]{4})(?=$|[\s,.;:)])")


def repair_years(text: str) -> str:
    """'năm z017' → 'năm 2017': the four characters after 'năm' (year) read with letters for
    digits (the O/l/z/S… table of :data:`_DIGIT_FIX`), when that makes a year 1900–2099."""

    def fix(m: re.Match) -> str:
        digits = _fix_digits(m.group(2))
        if digits.isdigit() and 1900 <= int(digits) <= 2099:
            return f"{m.group(1)} {digits}"
        return m.group(0)

    return _YEAR_AFTER_NAM.sub(fix, text)


def fix_subject_case(text: str) -> str:
    """'chuyển đổi Số trong' → 'chuyển đổi số trong' (Tesseract capitalises 'số' after its
    pattern); a year after 'năm' read with a letter for a digit is repaired (:func:`repair_years`)."""
    return repair_years(re.sub(r"(?<=[a-zà-ỹ] )Số(?= [a-zà-ỹ])", "số", text))
