"""Shared vocabulary and normalisation for extractors: dates, document types, capitalisation."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

#: Tên loại văn bản hành chính (Decree 30/2020/NĐ-CP, Art. 7) with the abbreviation used in
#: the number's symbol (Appendix III).
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
    "Giấy nghỉ phép": "GNP",
    "Phiếu gửi": "PG",
    "Phiếu chuyển": "PC",
    "Phiếu báo": "PB",
    "Công văn": "",
}

ABBREVIATION_TO_TYPE = {abbr.upper(): name for name, abbr in DOC_TYPES.items() if abbr}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lower-case and strip diacritics (đ→d) for tolerant matching."""
    text = nfc(text).lower().replace("đ", "d")
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def clean_spaces(text: str) -> str:
    return " ".join(text.split())


def doc_type_from_title(line: str) -> str | None:
    """The Decree-30 type named by a title line such as 'CHỈ THỊ' (tolerant of OCR noise)."""
    folded = re.sub(r"[^a-z ]", "", fold(line)).strip()
    folded = clean_spaces(folded)
    for name in sorted(DOC_TYPES, key=len, reverse=True):
        if name == "Công văn":
            continue
        if folded == fold(name):
            return name
    return None


def doc_type_from_number(number: str | None) -> str | None:
    """The type implied by the symbol of a number: '27/CT-TTg' → 'Chỉ thị'."""
    if not number or "/" not in number:
        return None
    symbol = number.split("/")[-1]
    head = symbol.split("-")[0].upper()
    return ABBREVIATION_TO_TYPE.get(head)


_DATE_WORDS = re.compile(
    r"ngày\s*(\d{1,2})\s*(?:tháng|th[áa]ng)\s*(\d{1,2})\s*(?:năm|n[ăa]m)\s*(\d{4})", re.IGNORECASE
)
_DATE_NUMERIC = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b")


def parse_vietnamese_date(text: str) -> date | None:
    """'ngày 22 tháng 4 năm 2021' or '22/04/2021' → date(2021, 4, 22); None if absent/invalid."""
    for rx in (_DATE_WORDS, _DATE_NUMERIC):
        m = rx.search(nfc(text))
        if m:
            d, mth, y = (int(g) for g in m.groups())
            try:
                return date(y, mth, d)
            except ValueError:
                return None
    return None


# Administrative-unit words after which a proper name follows.
_UNIT_WORDS = ("tỉnh", "thành phố", "quận", "huyện", "thị xã", "xã", "phường", "thị trấn")
# Agency words whose following specific name starts with a capital (Sở Tư pháp, Bộ Tài chính).
_AGENCY_WORDS = (
    "bộ", "sở", "phòng", "cục", "vụ", "ban", "tổng cục", "viện", "trung tâm", "văn phòng",
    "thanh tra", "chi cục", "ủy ban", "hội đồng", "trường", "bệnh viện", "công an",
)  # fmt: skip
_FIXED = {
    "chính phủ": "Chính phủ",
    "thủ tướng chính phủ": "Thủ tướng Chính phủ",
    "ủy ban nhân dân": "Ủy ban nhân dân",
    "hội đồng nhân dân": "Hội đồng nhân dân",
    "quốc hội": "Quốc hội",
    "việt nam": "Việt Nam",
    "trung ương": "Trung ương",
}


def _title_word(w: str) -> str:
    return w[:1].upper() + w[1:] if w else w


def sentence_case_name(upper: str) -> str:
    """Normal Vietnamese capitalisation of an agency name printed in capitals.

    'ỦY BAN NHÂN DÂN THÀNH PHỐ HỒ CHÍ MINH' → 'Ủy ban nhân dân Thành phố Hồ Chí Minh';
    'SỞ TƯ PHÁP' → 'Sở Tư pháp'; 'VĂN PHÒNG CHÍNH PHỦ' → 'Văn phòng Chính phủ'.
    """
    text = clean_spaces(nfc(upper).replace("UỶ", "ỦY").replace("Uỷ", "Ủy"))
    low = text.lower()
    out: list[str] = []
    words = low.split(" ")
    i = 0
    while i < len(words):
        rest = " ".join(words[i:])
        fixed = next((f for f in sorted(_FIXED, key=len, reverse=True) if rest.startswith(f + " ") or rest == f), None)
        if fixed:
            out.append(_FIXED[fixed])
            i += len(fixed.split(" "))
            continue
        unit = next((u for u in sorted(_UNIT_WORDS, key=len, reverse=True) if rest.startswith(u + " ")), None)
        if unit:
            n = len(unit.split(" "))
            name_words = words[i + n :]
            stop = len(name_words)
            unit_text = unit if out else _title_word(unit)
            if unit == "thành phố" and " ".join(name_words[:3]) == "hồ chí minh":
                unit_text = "Thành phố"
            out.append(unit_text)
            out.extend(_title_word(w) for w in name_words[:stop])
            break
        agency = next((a for a in sorted(_AGENCY_WORDS, key=len, reverse=True) if rest.startswith(a + " ")), None)
        if agency:
            n = len(agency.split(" "))
            out.append(_title_word(agency) if not out else agency)
            name = words[i + n :]
            # Specific name: capitalise the first syllable, and after 'và' / '-' separators.
            cap_next = True
            for w in name:
                if w in ("và", "-", "–"):
                    out.append(w)
                    cap_next = True
                    continue
                if _FIXED.get(w):
                    out.append(_FIXED[w])
                    cap_next = False
                    continue
                out.append(_title_word(w) if cap_next else w)
                cap_next = False
            # Fix multi-word fixed names inside ('chính phủ')
            joined = " ".join(out)
            for k, v in _FIXED.items():
                joined = re.sub(rf"(?<=\s){re.escape(k)}\b", v, joined, flags=re.IGNORECASE)
            return joined
        out.append(_title_word(words[i]) if not out else words[i])
        i += 1
    return " ".join(out)


def title_case_person(name: str) -> str:
    """'NGUYỄN VĂN A' → 'Nguyễn Văn A' (person names capitalise every syllable)."""
    return " ".join(_title_word(w.lower()) for w in clean_spaces(nfc(name)).split(" "))


def sentence_case_title(title: str) -> str:
    """'PHÓ CHỦ TỊCH' → 'Phó Chủ tịch'; 'BỘ TRƯỞNG' → 'Bộ trưởng'; 'GIÁM ĐỐC' → 'Giám đốc'."""
    low = clean_spaces(nfc(title)).lower()
    low = re.sub(r"\bchủ tịch\b", "Chủ tịch", low)
    low = re.sub(r"\bthủ tướng\b", "Thủ tướng", low)
    low = re.sub(r"\bchính phủ\b", "Chính phủ", low)
    return low[:1].upper() + low[1:]
