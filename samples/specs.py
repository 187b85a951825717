"""Document specs: the hand-written truth of what a sample scan shows.

Two sources:

* :func:`corpus_specs` — the real reform documents in ``samples/corpus.json`` (copied by hand from
  ``/work/shared/corpus``; the ``*.bad-ocr.txt`` file is *not* a source). Bodies are the real texts.
* :func:`synthetic_specs` — varied synthetic documents: real Vietnamese agencies, Decree 30 document
  types with the matching abbreviation in the number, random dates 2015–2025, Vietnamese names,
  bodies assembled from corpus sentences.

Train/test split. Synthetic documents are split by a hash of their number
(:func:`split_for_number`); a test document's body is assembled only from sentences of the
test-split corpus texts and a train document's only from the train-split ones, so a model trained on
``split == "train"`` never sees the sentences of a test text. Corpus documents have a fixed split
(:data:`CORPUS_SPLITS`): 27/CT-TTg and 476/TB-VPCP train, 516/TTg-KSTT test.

``authority_prefix`` holds the prefix with the body or title it applies to, as the pipeline reports
it (``"KT. Thủ tướng"``, ``"TM. Ủy ban nhân dân"``, ``"TL. Bộ trưởng"``); ``None`` when the head signs.
Recipients are stored without the leading ``-`` and trailing ``;``/``.`` the page shows.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

CORPUS_JSON = Path(__file__).with_name("corpus.json")

#: Tên loại văn bản hành chính (Decree 30/2020/NĐ-CP, Appendix III) → abbreviation in the number.
#: "Công văn" has no type name printed and no abbreviation: its number is "<n>/<issuer>-<unit>".
DOC_TYPE_ABBR: dict[str, str | None] = {
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
    "Công văn": None,
}

#: Types the synthetic generator draws, with weights.
SYNTHETIC_TYPES: dict[str, int] = {
    "Công văn": 30,
    "Quyết định": 18,
    "Kế hoạch": 12,
    "Thông báo": 10,
    "Báo cáo": 10,
    "Chỉ thị": 8,
    "Tờ trình": 6,
    "Hướng dẫn": 6,
}

#: Corpus documents' split (hand-assigned so that both splits have source text).
CORPUS_SPLITS: dict[str, str] = {"27/CT-TTg": "train", "476/TB-VPCP": "train", "516/TTg-KSTT": "test"}

AUTHORITY_PREFIXES = ("KT.", "TL.", "TM.", "Q.", "TUQ.")


@dataclass
class DocumentSpec:
    """One administrative document as it is printed (Decree 30/2020/NĐ-CP)."""

    number: str  # "5898/UBND-KSTT"
    doc_type: str  # "Công văn", "Quyết định", ...
    issuer: str  # "Ủy ban nhân dân Thành phố Hồ Chí Minh" (one line, normal case)
    place: str  # "Hà Nội"
    date: str  # ISO "2023-10-27"
    subject: str  # trích yếu, without "V/v"
    signer: str
    signer_title: str  # "Phó Chủ tịch"
    body: list[str]
    recipients: list[str] = field(default_factory=list)  # Nơi nhận
    issuer_parent: str | None = None  # cơ quan chủ quản, e.g. "Ủy ban nhân dân tỉnh Bình Dương"
    authority_prefix: str | None = None  # "KT. Chủ tịch", "TM. Ủy ban nhân dân", ...
    addressees: list[str] = field(default_factory=list)  # Kính gửi (Công văn)
    split: str = "train"  # "train" | "test"
    source: str = "synthetic"  # corpus file name or "synthetic"

    @property
    def is_letter(self) -> bool:
        return self.doc_type == "Công văn"

    @property
    def stem(self) -> str:
        """A file-name-safe stem: '27/CT-TTg' → 'ct-27-ttg'-like ascii slug."""
        return slugify(f"{self.doc_type} {self.number}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DocumentSpec:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# --- helpers ------------------------------------------------------------------------------

_FOLD = str.maketrans("đĐ", "dD")


def fold(text: str) -> str:
    import unicodedata

    text = unicodedata.normalize("NFD", text.translate(_FOLD))
    return "".join(c for c in text if not unicodedata.combining(c))


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text).lower()).strip("-")


def split_for_number(number: str) -> str:
    """Deterministic split of a synthetic document by its number: ~20% test."""
    h = int(hashlib.sha256(number.encode("utf-8")).hexdigest(), 16)
    return "test" if h % 5 == 0 else "train"


def number_type_abbr(number: str) -> str | None:
    """The type abbreviation in a number ('15/QĐ-UBND' → 'QĐ'); None for a letter ('1234/UBND-VX')."""
    m = re.match(r"^\s*\d+\s*/\s*(?:\d{4}/)?([^-\s]+)-", number)
    if not m:
        return None
    abbr = m.group(1)
    return abbr if abbr in DOC_TYPE_ABBR.values() else None


def vn_date(iso: str) -> tuple[int, int, int]:
    y, m, d = (int(x) for x in iso.split("-"))
    return y, m, d


def date_line(spec: DocumentSpec) -> str:
    """'Hà Nội, ngày 27 tháng 10 năm 2023' (Decree 30: day < 10 and months 1–2 get a leading zero)."""
    y, m, d = vn_date(spec.date)
    dd = f"{d:02d}" if d < 10 else str(d)
    mm = f"{m:02d}" if m < 3 else str(m)
    return f"{spec.place}, ngày {dd} tháng {mm} năm {y}"


def upper_vn(text: str) -> str:
    return text.upper()


# --- corpus -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _corpus_raw() -> list[dict]:
    return json.loads(CORPUS_JSON.read_text(encoding="utf-8"))["documents"]


def corpus_specs() -> list[DocumentSpec]:
    """Specs for the real corpus texts (hand-checked headers; body = the real text)."""
    out = []
    for d in _corpus_raw():
        spec = DocumentSpec.from_dict({**d, "source": d["source_file"], "split": CORPUS_SPLITS[d["number"]]})
        out.append(spec)
    return out


_SENT_SPLIT = re.compile(r"(?<=[.;])\s+")


def _sentences(para: str) -> list[str]:
    """Split at '. ' / '; ' when the next piece starts with a capital letter."""
    out: list[str] = []
    for piece in _SENT_SPLIT.split(para):
        if out and not piece[:1].isupper():
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


@lru_cache(maxsize=2)
def sentence_pool(split: str) -> tuple[str, ...]:
    """Body sentences of the corpus texts of one split (used to assemble synthetic bodies)."""
    sents: list[str] = []
    for spec in corpus_specs():
        if spec.split != split:
            continue
        for para in spec.body:
            para = re.sub(r"^(\d+\.|[a-zđ]\)|-)\s*", "", para)
            for s in _sentences(para):
                s = s.strip().rstrip("./").strip()
                if 60 <= len(s) <= 650 and not s.endswith(":") and s[:1].isupper() and "này" not in s[-30:]:
                    sents.append(s)
    return tuple(sents)


# --- synthetic ----------------------------------------------------------------------------

# name, parent (None when not printed), place, code in numbers, head title, deputy title, units,
# collective body for "TM." (None when the body is not collective), clerk title for "TL."
_ISSUERS: list[dict] = [
    dict(name="Ủy ban nhân dân Thành phố Hồ Chí Minh", place="Thành phố Hồ Chí Minh", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["KSTT", "VX", "KT", "ĐT", "NCPC"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân thành phố Hà Nội", place="Hà Nội", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["KSTTHC", "KGVX", "KT", "ĐT"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân thành phố Đà Nẵng", place="Đà Nẵng", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["KSTT", "VX", "KT"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân thành phố Hải Phòng", place="Hải Phòng", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["KSTTHC", "VX", "NC"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân thành phố Cần Thơ", place="Cần Thơ", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["KSTT", "KT", "VX"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân tỉnh Bình Dương", place="Bình Dương", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["HCC", "VX", "KT"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân tỉnh Quảng Ninh", place="Quảng Ninh", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["TTHC", "NC", "XD"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân tỉnh Nghệ An", place="Nghệ An", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["KSTT", "VX", "TH"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân tỉnh Lâm Đồng", place="Lâm Đồng", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["NC", "VX", "KH"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân tỉnh Thừa Thiên Huế", place="Thừa Thiên Huế", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["HCC", "GD", "NC"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân quận Hoàn Kiếm", place="Hoàn Kiếm", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["VP", "NV", "TP"], collective="Ủy ban nhân dân"),
    dict(name="Ủy ban nhân dân huyện Củ Chi", place="Củ Chi", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["VP", "TP", "NV"], collective="Ủy ban nhân dân"),
    dict(name="Sở Tư pháp", parent="Ủy ban nhân dân tỉnh Bình Dương", place="Bình Dương", code="STP",
         head="Giám đốc", deputy="Phó Giám đốc", units=["HCTP", "VP", "BTTP"], clerk="Chánh Văn phòng"),
    dict(name="Sở Nội vụ", parent="Ủy ban nhân dân thành phố Hà Nội", place="Hà Nội", code="SNV",
         head="Giám đốc", deputy="Phó Giám đốc", units=["CCHC", "TCBM", "VP"], clerk="Chánh Văn phòng"),
    dict(name="Sở Thông tin và Truyền thông", parent="Ủy ban nhân dân tỉnh Đồng Nai", place="Đồng Nai", code="STTTT",
         head="Giám đốc", deputy="Phó Giám đốc", units=["CNTT", "BCVT", "VP"], clerk="Chánh Văn phòng"),
    dict(name="Sở Kế hoạch và Đầu tư", parent="Ủy ban nhân dân tỉnh Long An", place="Long An", code="SKHĐT",
         head="Giám đốc", deputy="Phó Giám đốc", units=["ĐKKD", "TH", "VP"], clerk="Chánh Văn phòng"),
    dict(name="Bộ Nội vụ", place="Hà Nội", code="BNV",
         head="Bộ trưởng", deputy="Thứ trưởng", units=["CCHC", "VP", "TCBC"], clerk="Vụ trưởng Vụ Cải cách hành chính"),
    dict(name="Bộ Tư pháp", place="Hà Nội", code="BTP",
         head="Bộ trưởng", deputy="Thứ trưởng", units=["VP", "HTQTCT", "PLDSKT"], clerk="Chánh Văn phòng"),
    dict(name="Bộ Thông tin và Truyền thông", place="Hà Nội", code="BTTTT",
         head="Bộ trưởng", deputy="Thứ trưởng", units=["CĐSQG", "THH", "VP"], clerk="Cục trưởng Cục Chuyển đổi số quốc gia"),
    dict(name="Bộ Tài chính", place="Hà Nội", code="BTC",
         head="Bộ trưởng", deputy="Thứ trưởng", units=["VP", "TCT", "CST"], clerk="Chánh Văn phòng"),
    dict(name="Văn phòng Chính phủ", place="Hà Nội", code="VPCP",
         head="Bộ trưởng, Chủ nhiệm", deputy="Phó Chủ nhiệm", units=["KSTT", "ĐMDN", "KGVX"], clerk="Cục trưởng Cục Kiểm soát thủ tục hành chính"),
    dict(name="Cục Kiểm soát thủ tục hành chính", parent="Văn phòng Chính phủ", place="Hà Nội", code="KSTT",
         head="Cục trưởng", deputy="Phó Cục trưởng", units=["NC", "KT", "VP"], clerk="Chánh Văn phòng"),
    dict(name="Ủy ban nhân dân phường Bến Nghé", parent=None, place="Quận 1", code="UBND",
         head="Chủ tịch", deputy="Phó Chủ tịch", units=["VP"], collective="Ủy ban nhân dân"),
]

_SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Trịnh", "Đinh"]
_MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Quốc", "Ngọc", "Xuân", "Hoàng", "Thành", "Công", "Anh", "Thu", "Mạnh", "Kim"]
_GIVEN = ["Hùng", "Dũng", "Lan", "Hương", "Tuấn", "Hải", "Sơn", "Nam", "Bình", "Phương", "Thảo", "Long", "Quang", "Trung", "Hà",
          "Hạnh", "Khánh", "Linh", "Cường", "Thắng", "Tâm", "Hòa", "Đông", "Phúc", "Vinh", "Nghĩa", "Yến", "Thủy", "Đạt", "Hiếu"]

_TOPICS = [
    "cải cách thủ tục hành chính",
    "số hóa hồ sơ, kết quả giải quyết thủ tục hành chính",
    "thực hiện cơ chế một cửa, một cửa liên thông trong giải quyết thủ tục hành chính",
    "cung cấp dịch vụ công trực tuyến toàn trình",
    "triển khai Đề án 06 của Chính phủ",
    "chuyển đổi số trong cơ quan nhà nước",
    "kiểm soát thủ tục hành chính",
    "tiếp nhận, xử lý phản ánh, kiến nghị của người dân, doanh nghiệp",
    "lưu trữ hồ sơ điện tử",
    "thanh toán trực tuyến phí, lệ phí",
    "nâng cao chỉ số hài lòng của người dân, doanh nghiệp",
    "rà soát, đơn giản hóa thủ tục hành chính nội bộ",
    "kết nối, chia sẻ dữ liệu với Cổng dịch vụ công quốc gia",
]

_SUBJECTS: dict[str, list[str]] = {
    "Công văn": ["Triển khai thực hiện {topic}", "Đôn đốc thực hiện {topic} năm {year}", "Góp ý dự thảo văn bản về {topic}",
                 "Báo cáo kết quả {topic} quý {q} năm {year}", "Tăng cường {topic}"],
    "Quyết định": ["Về việc ban hành Kế hoạch {topic} năm {year}", "Về việc thành lập Tổ công tác {topic}",
                   "Phê duyệt Đề án {topic} giai đoạn {year}-{year5}", "Về việc công bố danh mục thủ tục hành chính được chuẩn hóa"],
    "Kế hoạch": ["{Topic} năm {year}", "Triển khai {topic} giai đoạn {year}-{year5}", "Kiểm tra công tác {topic} năm {year}"],
    "Thông báo": ["Kết luận của Chủ tịch tại cuộc họp về {topic}", "Ý kiến chỉ đạo về {topic}", "Kết quả kiểm tra công tác {topic} năm {year}"],
    "Báo cáo": ["Kết quả {topic} quý {q} năm {year}", "Tình hình {topic} năm {year}", "Sơ kết 6 tháng đầu năm {year} về {topic}"],
    "Chỉ thị": ["Về tăng cường {topic}", "Về đẩy mạnh {topic} trên địa bàn", "Về chấn chỉnh kỷ luật, kỷ cương trong {topic}"],
    "Tờ trình": ["Đề nghị phê duyệt Kế hoạch {topic} năm {year}", "Về việc ban hành Quy chế {topic}"],
    "Hướng dẫn": ["Thực hiện {topic}", "Quy trình {topic} năm {year}"],
}

_OPENINGS = [
    "Thực hiện chỉ đạo của {parent} về {topic}; căn cứ tình hình thực tế tại cơ quan, đơn vị, {issuer} {verb} như sau:",
    "Nhằm tiếp tục nâng cao hiệu quả {topic}, {issuer} {verb} như sau:",
    "Căn cứ Nghị định số 61/2018/NĐ-CP ngày 23 tháng 4 năm 2018 của Chính phủ và Nghị định số 107/2021/NĐ-CP ngày 06 tháng 12 năm 2021 của Chính phủ, {issuer} {verb} như sau:",
    "Để bảo đảm tiến độ {topic} năm {year}, {issuer} {verb} như sau:",
]
_VERBS = {"Công văn": "đề nghị", "Kế hoạch": "ban hành Kế hoạch", "Báo cáo": "báo cáo", "Thông báo": "thông báo",
          "Chỉ thị": "yêu cầu", "Tờ trình": "kính trình", "Hướng dẫn": "hướng dẫn", "Quyết định": "quyết định"}
_CLOSINGS = [
    "Trong quá trình thực hiện, nếu có khó khăn, vướng mắc, đề nghị các cơ quan, đơn vị kịp thời phản ánh về {issuer} để được hướng dẫn, giải quyết./.",
    "Đề nghị các cơ quan, đơn vị nghiêm túc triển khai thực hiện./.",
    "{Issuer} đề nghị các cơ quan, đơn vị quan tâm, phối hợp thực hiện./.",
]
_RECIPIENTS = [
    "Văn phòng Chính phủ", "Bộ Nội vụ", "Thường trực Tỉnh ủy", "Thường trực HĐND tỉnh", "Các sở, ban, ngành",
    "UBND các quận, huyện", "UBND các xã, phường, thị trấn", "Cục Kiểm soát thủ tục hành chính", "Trung tâm Phục vụ hành chính công",
    "Cổng Thông tin điện tử", "Ban Giám đốc", "Các phòng, đơn vị trực thuộc", "Đài Phát thanh và Truyền hình",
]
_ADDRESSEES = ["Các sở, ban, ngành", "Ủy ban nhân dân các quận, huyện", "Ủy ban nhân dân các xã, phường, thị trấn",
               "Bộ Thông tin và Truyền thông", "Văn phòng Chính phủ", "Sở Nội vụ", "Các đơn vị trực thuộc"]


def _person(rng: random.Random) -> str:
    mid = rng.choice(_MIDDLE)
    if rng.random() < 0.3:
        mid = f"{mid} {rng.choice(['Văn', 'Minh', 'Thị', 'Quang', 'Hoài'])}"
    return f"{rng.choice(_SURNAMES)} {mid} {rng.choice(_GIVEN)}"


def _rand_date(rng: random.Random) -> date:
    start, end = date(2015, 1, 1), date(2025, 12, 31)
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def _body(rng: random.Random, split: str, doc_type: str, issuer: dict, topic: str, year: int) -> list[str]:
    pool = sentence_pool(split)
    fmt = dict(topic=topic, Topic=topic[:1].upper() + topic[1:], year=year, issuer=issuer["name"],
               Issuer=issuer["name"], parent=issuer.get("parent") or "Chính phủ, Thủ tướng Chính phủ",
               verb=_VERBS.get(doc_type, "thông báo"))
    paras: list[str] = []
    if doc_type == "Quyết định":
        paras += [
            "Căn cứ Luật Tổ chức chính quyền địa phương ngày 19 tháng 6 năm 2015;" if issuer["code"] == "UBND"
            else "Căn cứ Luật Tổ chức Chính phủ ngày 19 tháng 6 năm 2015;",
            "Căn cứ Nghị định số 30/2020/NĐ-CP ngày 05 tháng 3 năm 2020 của Chính phủ về công tác văn thư;",
            f"Theo đề nghị của {rng.choice(['Chánh Văn phòng', 'Giám đốc Sở Nội vụ', 'Trưởng phòng Tổ chức cán bộ'])}.",
            "QUYẾT ĐỊNH:",
        ]
        n_art = rng.randint(3, 5)
        for k in range(1, n_art + 1):
            if k == n_art:
                paras.append(f"Điều {k}. Quyết định này có hiệu lực kể từ ngày ký. Chánh Văn phòng, Thủ trưởng các cơ quan, đơn vị có liên quan chịu trách nhiệm thi hành Quyết định này./.")
            else:
                sents = rng.sample(pool, k=min(len(pool), rng.randint(1, 3)))
                paras.append(f"Điều {k}. " + ". ".join(sents) + ".")
        return paras
    paras.append(rng.choice(_OPENINGS).format(**fmt))
    n_items = rng.randint(2, 9)
    for k in range(1, n_items + 1):
        sents = rng.sample(pool, k=min(len(pool), rng.randint(1, 3)))
        style = rng.random()
        text = ". ".join(sents) + "."
        if style < 0.6:
            paras.append(f"{k}. {text}")
        elif style < 0.85:
            paras.append(f"- {text}")
        else:
            paras.append(text)
    paras.append(rng.choice(_CLOSINGS).format(**fmt))
    return paras


def synthetic_spec(rng: random.Random) -> DocumentSpec:
    """One synthetic document drawn from ``rng``."""
    types, weights = zip(*SYNTHETIC_TYPES.items(), strict=True)
    doc_type = rng.choices(types, weights=weights)[0]
    iss = rng.choice(_ISSUERS)
    d = _rand_date(rng)
    year = d.year
    abbr = DOC_TYPE_ABBR[doc_type]
    unit = rng.choice(iss["units"])
    if abbr is None:
        number = f"{rng.randint(1, 9999)}/{iss['code']}-{unit}"
    else:
        number = f"{rng.randint(1, 2999 if doc_type == 'Quyết định' else 899)}/{abbr}-{iss['code']}"
    split = split_for_number(number)
    topic = rng.choice(_TOPICS)
    subject = rng.choice(_SUBJECTS[doc_type]).format(
        topic=topic, Topic=topic[:1].upper() + topic[1:], year=year, year5=year + 5, q=rng.randint(1, 4))
    subject = subject[:1].upper() + subject[1:]
    # Signature authority.
    r = rng.random()
    prefix = None
    title = iss["head"]
    if r < 0.45:
        prefix, title = f"KT. {iss['head']}", iss["deputy"]
    elif r < 0.6 and iss.get("collective") and doc_type in ("Quyết định", "Chỉ thị", "Kế hoạch"):
        prefix, title = f"TM. {iss['collective']}", iss["head"]
    elif r < 0.7 and iss.get("clerk") and doc_type in ("Công văn", "Thông báo"):
        prefix, title = f"TL. {iss['head']}", iss["clerk"]
    recipients = []
    if abbr is None:
        recipients.append("Như trên")
    recipients += rng.sample(_RECIPIENTS, k=rng.randint(2, 5))
    recipients.append(f"Lưu: VT, {unit}" if abbr is None else f"Lưu: VT, {rng.choice(iss['units'])}")
    addressees = rng.sample(_ADDRESSEES, k=rng.randint(1, 3)) if abbr is None else []
    return DocumentSpec(
        number=number,
        doc_type=doc_type,
        issuer=iss["name"],
        issuer_parent=iss.get("parent"),
        place=iss["place"],
        date=d.isoformat(),
        subject=subject,
        signer=_person(rng),
        signer_title=title,
        authority_prefix=prefix,
        recipients=recipients,
        addressees=addressees,
        body=_body(rng, split, doc_type, iss, topic, year),
        split=split,
        source="synthetic",
    )


def synthetic_specs(n: int, seed: int = 0) -> list[DocumentSpec]:
    """``n`` varied synthetic documents, deterministic for ``seed``; numbers are unique."""
    rng = random.Random(f"sohoa-samples-{seed}")
    out: list[DocumentSpec] = []
    seen: set[str] = set()
    while len(out) < n:
        spec = synthetic_spec(rng)
        if spec.number in seen:
            continue
        seen.add(spec.number)
        out.append(spec)
    return out


# --- truth --------------------------------------------------------------------------------

TRUTH_FIELDS = ("number", "doc_type", "issuer", "issuer_parent", "place", "date", "subject", "signer",
                "signer_title", "authority_prefix", "recipients")


def signature_lines(spec: DocumentSpec) -> list[str]:
    """Signature block lines as printed (upper case), without the signer's name."""
    lines = []
    if spec.authority_prefix:
        p, _, rest = spec.authority_prefix.partition(" ")
        lines.append(f"{p} {upper_vn(rest)}".strip())
    lines.append(upper_vn(spec.signer_title))
    return lines


def header_lines(spec: DocumentSpec) -> dict[str, list[str]]:
    """Logical header lines (left column, right column, title block)."""
    left = []
    if spec.issuer_parent:
        left.append(upper_vn(spec.issuer_parent))
    left.append(upper_vn(spec.issuer))
    left.append(f"Số: {spec.number}")
    if spec.is_letter:
        left.append(f"V/v {spec.subject}")
    right = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", date_line(spec)]
    title = [] if spec.is_letter else [upper_vn(spec.doc_type), spec.subject]
    return {"left": left, "right": right, "title": title}


def addressee_lines(spec: DocumentSpec) -> list[str]:
    if not spec.addressees:
        return []
    if len(spec.addressees) == 1:
        return [f"Kính gửi: {spec.addressees[0]}."]
    return ["Kính gửi:"] + [f"- {a}{'.' if i == len(spec.addressees) - 1 else ';'}" for i, a in enumerate(spec.addressees)]


def recipient_lines(spec: DocumentSpec) -> list[str]:
    out = ["Nơi nhận:"]
    for i, r in enumerate(spec.recipients):
        out.append(f"- {r}{'.' if i == len(spec.recipients) - 1 else ';'}")
    return out


def spec_text(spec: DocumentSpec) -> str:
    """The document's plain text in reading order (logical lines, not the wrapped page lines)."""
    h = header_lines(spec)
    lines = [ln for ln in h["left"] if not ln.startswith(("Số:", "V/v "))]
    lines += h["right"][:2]
    lines.append(f"Số: {spec.number}")
    lines.append(h["right"][2])
    if spec.is_letter:
        lines.append(f"V/v {spec.subject}")
    lines += h["title"]
    lines += addressee_lines(spec)
    lines += spec.body
    lines += signature_lines(spec)
    lines.append(spec.signer)
    if spec.recipients:
        lines += recipient_lines(spec)
    return "\n".join(lines)


def to_truth(spec: DocumentSpec) -> dict:
    """{"fields": {...record fields...}, "text": plain text as rendered (logical lines)}."""
    f = {k: getattr(spec, k) for k in TRUTH_FIELDS}
    f["recipients"] = list(spec.recipients)
    return {"fields": f, "text": spec_text(spec)}
