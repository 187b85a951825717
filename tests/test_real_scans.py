"""Real signed scans (``../shared/real-scans``): the per-page path copes with real input.

Every PDF (signed, with a thin text layer from the signing stamp, red seals, colour, an
incoming-mail stamp) is probed and every page rendered, deskewed and cleaned up without an
exception; page 1 is OCRed (one page per PDF keeps the module at about a minute) and must
give a non-trivial amount of text that the quality gate judges credible. The original bytes
are never modified. Run with ``-s`` to see one line per scan (pages, skew, orientation,
confidence, seconds per stage).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

REAL_SCANS = Path(__file__).resolve().parents[1].parent / "shared" / "real-scans"
PDFS = sorted(REAL_SCANS.glob("*.pdf")) if REAL_SCANS.is_dir() else []

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PDFS, reason=f"real scans not present in {REAL_SCANS}"),
]

MIN_FIRST_PAGE_CHARS = 200


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    from pipeline.runtime.config import Settings

    return Settings(home=tmp_path_factory.mktemp("sohoa-home"))


@pytest.mark.parametrize("path", PDFS, ids=[p.stem for p in PDFS])
def test_real_scan_goes_through_load_deskew_cleanup_ocr(path: Path, settings):
    from pipeline.runtime.document import read_page
    from pipeline.stages.cleanup import cleanup_page
    from pipeline.stages.deskew import deskew_page
    from pipeline.stages.load import PDF, probe, render_page
    from pipeline.stages.quality import assess_page_text

    before = _sha256(path)
    stat_before = path.stat()
    data = path.read_bytes()
    seconds = {"load": 0.0, "deskew": 0.0, "cleanup": 0.0}

    t0 = time.perf_counter()
    info = probe(data, settings.limits)
    seconds["load"] += time.perf_counter() - t0
    assert info.media_type == PDF
    assert info.page_count >= 1

    first = None
    skews = []
    for page in range(1, info.page_count + 1):
        t0 = time.perf_counter()
        raster = render_page(data, info, page, settings.limits)
        seconds["load"] += time.perf_counter() - t0
        # grey and bitonal scans stay one channel, colour scans RGB
        assert raster.image.ndim == 2 or (raster.image.ndim == 3 and raster.image.shape[2] == 3)
        t0 = time.perf_counter()
        processed = deskew_page(raster, settings.image)
        seconds["deskew"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        processed = cleanup_page(processed, settings.image)
        seconds["cleanup"] += time.perf_counter() - t0
        assert processed.ocr_image.shape == processed.color.shape[:2]
        skews.append(processed.skew_angle)
        if page == 1:
            first = processed

    t0 = time.perf_counter()
    first, (words, text, conf, text_pdf, _), turn_secs = read_page(first, settings)
    seconds["ocr"] = time.perf_counter() - t0

    chars = len("".join(text.split()))
    report = assess_page_text(text, conf, settings.ocr)
    print(
        f"\n{path.name}: {info.page_count} pages; skew {', '.join(f'{s:+.2f}' for s in skews)}°; "
        f"page 1 orientation {first.orientation}°, {chars} chars, {len(words)} words, mean confidence {conf:.1f}, "
        f"flags {first.flags}; seconds load {seconds['load']:.1f} deskew {seconds['deskew']:.1f} "
        f"cleanup {seconds['cleanup']:.1f} ocr(p1) {seconds['ocr']:.1f} (orientation retry {turn_secs:.1f}); "
        f"gate credible={report.credible} {report.reasons}"
    )

    assert chars >= MIN_FIRST_PAGE_CHARS, f"page 1 gave only {chars} characters"
    assert 0.0 < conf <= 100.0
    assert text_pdf.startswith(b"%PDF")
    assert report.credible, report.reasons
    # the original is untouched
    assert _sha256(path) == before
    assert path.stat().st_mtime_ns == stat_before.st_mtime_ns and path.stat().st_size == stat_before.st_size


# --- issue 17: records of real documents never hold a wrong value that nothing flags ----------

#: A few documents that exercise each rule at a small OCR cost: the born-digital notice (text
#: layer, five embedded signatures), a notice whose handwritten day OCR misreads (signing-time
#: check), a decision with the seal over the signer's name, a letter with a 'V/v' subject, and a
#: submission followed by an attached draft with its own unsigned signature block.
SUBSET = ("qn-565-tb-born-digital.pdf", "qn-46-tb.pdf", "qn-90-qd-ct.pdf", "qn-575-ub.pdf", "qn-09-ttr.pdf")


def _same(truth, got) -> bool:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from real_scans import same

    return same(truth, got)


@pytest.mark.parametrize("name", SUBSET)
def test_every_field_of_a_real_document_is_right_or_named_for_review(name, settings):
    import hashlib
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from real_scans import FIELDS, comparable

    from pipeline.runtime.document import build_record, prepare_bytes, process_page_bytes
    from pipeline.stages.models import PageOutput, SourceRef

    truth = json.loads((REAL_SCANS / "truth.json").read_text(encoding="utf-8"))[name]
    data = (REAL_SCANS / name).read_bytes()
    info = prepare_bytes(data, settings)
    outputs = [process_page_bytes(data, info, p, settings) for p in range(1, info.page_count + 1)]
    assert all(isinstance(o, PageOutput) for o in outputs), outputs
    ref = SourceRef(document_id=hashlib.sha256(data).hexdigest(), source_file=name, size=len(data), original_key="x")
    record = build_record(ref, outputs, settings=settings, info=info).to_json()  # as stored

    flagged = {i["field"] for i in record["review_reasons"] + record["validation_errors"]}
    wrong = {f for f in FIELDS if not _same(truth["fields"].get(f), comparable(f, record["fields"].get(f)))}
    assert not (wrong - flagged), {f: record["fields"].get(f) for f in wrong - flagged}
    if record["status"] == "ok":
        assert not wrong
    # the PDF's signatures are in the provenance, the first with the time its /M gives
    sigs = record["provenance"]["signatures"]
    assert sigs and sigs[0]["signing_time"] == truth["sig_time"]
    sources = {p["text_source"] for p in record["pages"]}
    assert sources == ({"text_layer"} if truth["text_layer"] == "full" else {"ocr"})
    if truth["text_layer"] == "full":  # printed by the e-office system: exact, and trusted
        assert record["fields"]["number"] == truth["fields"]["number"]
        assert record["fields"]["date"] == truth["fields"]["date"]
    for field in truth["handwritten"]:  # handwritten on a scan: right, or empty with the slot's box
        if record["fields"].get(field) != truth["fields"][field]:
            assert record["fields"].get(field) is None and field in flagged
            assert record["field_evidence"][field]["boxes"]
