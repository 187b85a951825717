"""The in-process engine is ``tesserocr`` (its wheel's Tesseract 5) reading Debian's ``vie`` data:
the words, boxes and confidences, the page-segmentation modes and variables sohoa uses reach it;
a missing language is a typed error; it reads in the calling thread, one engine per thread; and
it reads what the ``tesseract`` executable reads (Debian's 5.3, kept for crash isolation)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline._exec import tesseract
from pipeline.runtime.errors import ExitCode, MissingDependencyError, SohoaError, exit_code_for
from pipeline.stages.ocr import parse_tsv

ROOT = Path(__file__).resolve().parents[1]
FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
REAL_SCANS = ROOT.parent / "shared" / "real-scans"
LINES = ["Số: 5898/UBND-KSTT", "Thực hiện ý kiến chỉ đạo của Thủ tướng Chính phủ về việc",
         "đẩy mạnh cải cách thủ tục hành chính, số hóa hồ sơ."]  # fmt: skip


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    im = Image.new("L", (2480, 700), 255)
    draw = ImageDraw.Draw(im)
    font = ImageFont.truetype(FONT, 54)
    for i, line in enumerate(LINES):
        draw.text((250, 150 + i * 130), line, font=font, fill=0)
    return np.asarray(im)


def _read(image: np.ndarray, **kwargs) -> str:
    options = {"dpi": 300, "lang": "vie", "psm": 4, "user_patterns": tesseract.PATTERNS_FILE, "text_pdf": False}
    return tesseract.run(image, **(options | kwargs)).tsv


def test_the_library_engine_is_tesserocr_reading_debian_vie_data_with_sohoa_variables():
    import tesserocr

    assert tesseract.tesseract_version("library").startswith("5.")
    assert tesserocr.tesseract_version().startswith(f"tesseract {tesseract.tesseract_version('library')}")
    listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=True).stdout
    assert f'"{tesseract.tessdata_dir()}/"' in listed  # the executable's own folder
    assert (tesseract.tessdata_dir() / "vie.traineddata").is_file()
    with tesseract.engine("vie", 1, tesseract.PATTERNS_FILE) as engine:
        api = engine._api
        assert api.GetDatapath().rstrip("/") == str(tesseract.tessdata_dir())
        assert api.GetInitLanguagesAsString() == "vie"
        assert api.GetStringVariable("user_patterns_file") == str(tesseract.PATTERNS_FILE)
        assert api.GetBoolVariable("tessedit_do_invert") is False  # ENGINE_VARIABLES


def test_a_missing_language_is_a_typed_error_naming_the_package(gray):
    with pytest.raises(MissingDependencyError, match="xyz.*tesseract-ocr-vie") as err:
        tesseract.check_language("vie+xyz")
    assert isinstance(err.value, SohoaError) and exit_code_for(err.value) == ExitCode.missing_dependency
    with pytest.raises(MissingDependencyError):
        _read(gray, lang="xyz")


def test_words_boxes_and_confidences_are_those_of_tesseracts_result_iterator(gray):
    import tesserocr

    words = parse_tsv(_read(gray))
    assert [w.text for w in words[:2]] == ["Số:", "5898/UBND-KSTT"]
    assert len({w.line for w in words}) == len(LINES)
    with tesseract.engine("vie", 1, tesseract.PATTERNS_FILE) as engine:
        api = engine._api
        api.SetPageSegMode(4)
        api.SetImageBytes(gray.tobytes(), gray.shape[1], gray.shape[0], 1, gray.shape[1])
        api.SetSourceResolution(300)
        assert api.Recognize()
        iterated = [(it.GetUTF8Text(tesserocr.RIL.WORD), it.BoundingBox(tesserocr.RIL.WORD),
                     it.Confidence(tesserocr.RIL.WORD)) for it in tesserocr.iterate_level(api.GetIterator(),
                                                                                         tesserocr.RIL.WORD)]  # fmt: skip
        api.Clear()
    assert [w.text for w in words] == [text for text, _, _ in iterated]
    assert [w.bbox for w in words] == [box for _, box, _ in iterated]
    assert [w.conf for w in words] == pytest.approx([conf for _, _, conf in iterated], abs=1e-4)
    assert min(w.conf for w in words) > 80


def test_page_segmentation_modes_and_interword_spaces_reach_tesseract(gray):
    assert len({w.line for w in parse_tsv(_read(gray, psm=4))}) == len(LINES)
    one_line = gray[130:230]  # the first line alone, as a single text line (psm 7)
    assert [w.text for w in parse_tsv(_read(one_line, psm=7))] == ["Số:", "5898/UBND-KSTT"]
    for preserve in (False, True):
        _read(gray, preserve_interword_spaces=preserve)
        with tesseract.engine("vie", 1, tesseract.PATTERNS_FILE) as engine:
            assert engine._api.GetBoolVariable("preserve_interword_spaces") is preserve


def test_a_block_is_reread_with_its_words_in_page_coordinates(gray):
    """The targeted re-read of a region (pipeline.stages.extract.reread, psm 6) on the library engine."""
    from pipeline.stages.extract.reread import reread_block

    rgb = np.dstack([gray] * 3)
    whole = parse_tsv(_read(gray))
    box = (200, 250, 2400, 560)  # the second and third lines
    words = reread_block(rgb, box, 300)
    assert [w.text for w in words] == [w.text for w in whole if w.line > 0]
    for again, page_word in zip(words, [w for w in whole if w.line > 0], strict=True):
        assert max(abs(a - b) for a, b in zip(again.bbox, page_word.bbox, strict=True)) <= 4


def test_two_threads_read_at_once_each_with_its_own_engine(gray):
    alone = _read(gray)
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: _read(gray), range(2)))
    assert both == [alone, alone]
    assert len(tesseract._pool[tesseract._key("vie", 1, tesseract.PATTERNS_FILE)]) >= 2


def test_reading_in_process_starts_no_thread_even_without_an_openmp_limit():
    """Tesseract's OpenMP threads thrash when pages run in parallel; the library engine reads in the
    calling thread, whatever the environment says."""
    script = (
        "import numpy as np; from PIL import Image, ImageDraw, ImageFont; from pipeline._exec import tesseract\n"
        "def threads(): return int(next(l for l in open('/proc/self/status') if l.startswith('Threads')).split()[1])\n"
        f"im = Image.new('L', (1800, 400), 255); ImageDraw.Draw(im).text((100, 100), {LINES[1]!r},"
        f" font=ImageFont.truetype({FONT!r}, 54), fill=0)\n"
        "before = threads(); tsv = tesseract.run(np.asarray(im), dpi=300, lang='vie', psm=4, text_pdf=False).tsv\n"
        "print(before, threads(), 'Thủ' in tsv)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_THREAD_LIMIT", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()  # fmt: skip
    assert out[2] == "True"
    assert int(out[1]) == int(out[0])


@pytest.mark.skipif(not REAL_SCANS.is_dir(), reason=f"real scans not present in {REAL_SCANS}")
def test_on_a_real_scan_the_library_reads_what_the_executable_reads():
    """Tesseract 5.5 (the wheel) and 5.3 (Debian's executable) on the first page of a real signed
    scan, as sohoa prepares it: measured 98.3 % of the words the same in text and box on the first
    two scans, confidences 0.55 points apart on average (benchmarks/ocr_engine.py, all scans)."""
    import difflib

    from pipeline.runtime.config import Settings
    from pipeline.stages.cleanup import cleanup_page
    from pipeline.stages.deskew import deskew_page
    from pipeline.stages.load import probe, render_page

    settings = Settings(home=Path("/tmp"))
    data = min(REAL_SCANS.glob("*.pdf")).read_bytes()
    page = cleanup_page(deskew_page(render_page(data, probe(data, settings.limits), 1, settings.limits),
                                    settings.image), settings.image)  # fmt: skip
    library = parse_tsv(_read(page.ocr_image, dpi=page.dpi))
    cli = parse_tsv(_read(page.ocr_image, dpi=page.dpi, engine_kind="cli"))
    assert len(cli) > 200
    a, b = [(w.text, w.bbox) for w in cli], [(w.text, w.bbox) for w in library]
    blocks = difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks()
    assert sum(block.size for block in blocks) >= 0.95 * max(len(a), len(b))
    deltas = [abs(cli[blk.a + k].conf - library[blk.b + k].conf) for blk in blocks for k in range(blk.size)]
    assert sum(deltas) / len(deltas) < 2.0


def test_the_line_image_opt_in_is_set_at_the_edge_and_off_by_default(tmp_path):
    from pipeline.runtime.config import OcrSettings, settings_from_env
    from pipeline.runtime.errors import ConfigurationError

    assert OcrSettings().line_images_pnm is False
    assert settings_from_env({}, home=tmp_path).ocr.line_images_pnm is False
    assert settings_from_env({"SOHOA_OCR_LINE_IMAGES": "pnm"}, home=tmp_path).ocr.line_images_pnm is True
    with pytest.raises(ConfigurationError, match="SOHOA_OCR_LINE_IMAGES"):
        settings_from_env({"SOHOA_OCR_LINE_IMAGES": "jpeg"}, home=tmp_path)
