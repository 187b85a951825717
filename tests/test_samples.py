"""The sample generator: specs, rendering, degradation, writers and the committed scans (fast)."""

from __future__ import annotations

import json
import random
import re
from datetime import date
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from samples.degrade import degrade
from samples.io import page_count, read_pages, write_jpeg, write_pdf, write_png, write_tiff
from samples.render import available_fonts, render, render_document
from samples.specs import (
    DOC_TYPE_ABBR,
    DocumentSpec,
    corpus_specs,
    number_type_abbr,
    sentence_pool,
    split_for_number,
    synthetic_specs,
    to_truth,
)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LOW_DPI = 60  # rendering tests run at a low resolution to stay fast


def _check_spec(spec: DocumentSpec) -> None:
    assert date.fromisoformat(spec.date)
    assert 2015 <= int(spec.date[:4]) <= 2025
    assert spec.doc_type in DOC_TYPE_ABBR
    abbr = DOC_TYPE_ABBR[spec.doc_type]
    assert re.match(r"^\d+/\S+-\S+$", spec.number), spec.number
    assert number_type_abbr(spec.number) == abbr, (spec.number, spec.doc_type)
    assert spec.issuer and spec.place and spec.subject and spec.signer and spec.signer_title
    assert not spec.subject.lower().startswith("v/v")
    assert spec.body and all(p.strip() for p in spec.body)
    assert spec.recipients and all(not r.startswith("-") and not r.endswith(";") for r in spec.recipients)
    if spec.authority_prefix:
        assert spec.authority_prefix.split(" ")[0] in ("KT.", "TL.", "TM.", "Q.", "TUQ.")
    assert spec.split in ("train", "test")


def test_corpus_specs_are_the_real_documents():
    specs = {s.number: s for s in corpus_specs()}
    assert set(specs) == {"27/CT-TTg", "516/TTg-KSTT", "476/TB-VPCP"}
    for s in specs.values():
        _check_spec(s)
    ct = specs["27/CT-TTg"]
    assert (ct.doc_type, ct.date, ct.issuer, ct.place) == ("Chỉ thị", "2023-10-27", "Thủ tướng Chính phủ", "Hà Nội")
    cv = specs["516/TTg-KSTT"]
    assert cv.is_letter and cv.authority_prefix == "KT. Thủ tướng" and cv.signer == "Trương Hòa Bình"
    tb = specs["476/TB-VPCP"]
    assert tb.signer == "Trần Văn Sơn" and tb.signer_title == "Bộ trưởng, Chủ nhiệm" and tb.date == "2023-11-20"
    assert "bad-ocr" not in " ".join(s.source for s in specs.values())
    assert all("Thuc hién" not in p for s in specs.values() for p in s.body)


def test_synthetic_specs_valid_varied_and_deterministic():
    specs = synthetic_specs(80, seed=3)
    for s in specs:
        _check_spec(s)
    assert len({s.number for s in specs}) == 80
    assert len({s.doc_type for s in specs}) >= 5
    assert len({s.issuer for s in specs}) >= 10
    assert [s.to_dict() for s in specs] == [s.to_dict() for s in synthetic_specs(80, seed=3)]
    assert [s.number for s in specs] != [s.number for s in synthetic_specs(80, seed=4)]


def test_train_test_split_disjoint_and_stable():
    specs = synthetic_specs(150, seed=1)
    train = [s for s in specs if s.split == "train"]
    test = [s for s in specs if s.split == "test"]
    assert train and test
    assert all(s.split == split_for_number(s.number) for s in specs)
    assert {s.number for s in train}.isdisjoint({s.number for s in test})
    # corpus sentences are drawn per split: a test body holds no sentence of a train text and vice versa
    pool_train, pool_test = set(sentence_pool("train")), set(sentence_pool("test"))
    assert pool_train and pool_test and pool_train.isdisjoint(pool_test)
    train_corpus = " ".join(p for s in corpus_specs() if s.split == "train" for p in s.body)
    assert not any(x in train_corpus for x in pool_test)
    for s in test:
        body = " ".join(s.body)
        assert not any(x in body for x in pool_train), s.number
        assert any(x in body for x in pool_test), s.number
    for s in train:
        body = " ".join(s.body)
        assert not any(x in body for x in pool_test), s.number
    # stable: same number → same split, across seeds
    assert split_for_number("1234/UBND-VX") == split_for_number("1234/UBND-VX")


def test_to_truth_fields_and_text():
    spec = corpus_specs()[1]
    t = to_truth(spec)
    f = t["fields"]
    assert {"number", "doc_type", "issuer", "place", "date", "subject", "signer", "signer_title", "recipients"} <= set(f)
    assert f["number"] == "516/TTg-KSTT" and f["date"] == "2021-04-22"
    assert "Số: 516/TTg-KSTT" in t["text"] and "Hà Nội, ngày 22 tháng 4 năm 2021" in t["text"]
    assert t["text"].rstrip().endswith("- Lưu: VT, KSTT.")


def test_render_a4_rgb_pages_and_text():
    spec = synthetic_specs(1, seed=5)[0]
    r = render(spec, dpi=LOW_DPI)
    assert r.pages and all(p.mode == "RGB" for p in r.pages)
    for p in r.pages:
        assert abs(p.height / p.width - 297 / 210) < 0.01
        assert p.getpixel((1, 1)) == (255, 255, 255)
    assert len(r.page_texts) == len(r.pages)
    assert f"Số: {spec.number}" in r.text and spec.signer in r.text
    assert render_document(spec, dpi=LOW_DPI)[0].size == r.pages[0].size


def test_render_multi_page_flow():
    spec = synthetic_specs(1, seed=6)[0]
    spec.body = spec.body * 8
    r = render(spec, dpi=LOW_DPI)
    assert len(r.pages) >= 3
    assert r.page_texts[1].splitlines()[0] == "2"  # page number on top of page 2
    assert spec.signer in r.page_texts[-1] and "Nơi nhận:" in r.page_texts[-1]
    assert spec.signer not in r.page_texts[0]


@pytest.mark.parametrize("font", available_fonts())
def test_render_fonts(font):
    spec = corpus_specs()[2]
    assert render_document(spec, font=font, dpi=40)


def test_degrade_deterministic_and_angle():
    page = render_document(corpus_specs()[2], dpi=LOW_DPI)[0]
    a, ma = degrade(page, "office", random.Random(7))
    b, mb = degrade(page, "office", random.Random(7))
    assert ma == mb and a.tobytes() == b.tobytes()
    assert -3 <= ma["angle"] <= 3 and a.mode == "RGB"
    h, mh = degrade(page, "heavy", 11)
    assert -15 <= mh["angle"] <= 15 and mh["jpeg_quality"] <= 50
    c, mc = degrade(page, "clean", 0, angle=4.0)
    assert mc["angle"] == 4.0 and c.width > page.width and c.height > page.height
    d, md = degrade(page, "office", 1, angle=-2.5)
    assert md["angle"] == -2.5


def test_writers_roundtrip(tmp_path):
    pages = render_document(synthetic_specs(1, seed=6)[0], dpi=LOW_DPI)
    pages = pages + pages  # at least 2 pages
    pdf = write_pdf(pages, tmp_path / "a.pdf", dpi=LOW_DPI)
    with pikepdf.open(pdf) as doc:
        assert len(doc.pages) == len(pages)
        box = [float(x) for x in doc.pages[0].mediabox]
        assert abs(box[2] - 595.3) < 2 and abs(box[3] - 841.9) < 2  # A4 in points
    assert [p.size for p in read_pages(pdf)] == [p.size for p in pages]
    for comp in ("tiff_lzw", "group4"):
        tif = write_tiff(pages, tmp_path / f"a-{comp}.tif", dpi=LOW_DPI, compression=comp)
        with Image.open(tif) as im:
            assert im.n_frames == len(pages)
            assert round(im.info["dpi"][0]) == LOW_DPI
    jpg = write_jpeg(pages[0], tmp_path / "a.jpg", dpi=LOW_DPI)
    png = write_png(pages[0], tmp_path / "a.png", dpi=LOW_DPI)
    for p in (jpg, png):
        assert page_count(p) == 1
        with Image.open(p) as im:
            assert round(im.info["dpi"][0]) == LOW_DPI


def test_committed_samples_have_truth():
    scans = sorted(p for p in (SAMPLES / "scans").iterdir() if p.is_file())
    assert scans
    exts = {p.suffix for p in scans}
    assert {".pdf", ".tif", ".jpg", ".png"} <= exts
    total_pages = 0
    for scan in scans:
        truth = json.loads((SAMPLES / "truth" / f"{scan.stem}.json").read_text(encoding="utf-8"))
        assert truth["source_file"] == scan.name
        n = page_count(scan)
        assert n == truth["pages"] == len(truth["page_texts"]) == len(truth["degradation"])
        assert truth["fields"]["date"]
        if truth.get("record_type", "admin_document") == "admin_document":
            assert truth["fields"]["number"] and f"Số: {truth['fields']['number']}" in truth["text"]
        total_pages += n
    kinds = {json.loads((SAMPLES / "truth" / f"{p.stem}.json").read_text()).get("record_type", "admin_document")
             for p in scans}
    assert kinds == {"admin_document", "birth_certificate", "household_business_registration"}
    assert total_pages <= 12
    assert sum(p.stat().st_size for p in scans) < 4.5 * 1024 * 1024
    with pikepdf.open(next(p for p in scans if p.suffix == ".pdf")) as pdf:
        assert 2 <= len(pdf.pages) <= 3
    jpg = json.loads((SAMPLES / "truth" / f"{next(p for p in scans if p.suffix == '.jpg').stem}.json").read_text())
    assert 3 <= abs(jpg["degradation"][0]["angle"]) <= 5
