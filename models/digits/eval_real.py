"""Read the handwritten number and day of the real scans with ``read_slot``.

    .venv/bin/python models/digits/eval_real.py [--dir /work/shared/real-scans] [--crops DIR]

For each scanned file in ``truth.json`` (those whose ``handwritten`` lists the number and the
date) page 1 is rendered at 300 dpi with ``pdftoppm`` and two slots are read:

* number: from the end of "Số:" to the start of the "/…" symbol;
* day: from the end of "ngày" to the start of "tháng".

The slot boxes below are for EVALUATION ONLY. They were derived from Tesseract's word boxes
(``tesseract -l vie --psm 4 tsv`` on the top quarter of page 1): the left edge is the "Số" /
"ngày" word's left edge plus that word's printed width (66 / 107 px at 300 dpi, because
Tesseract often glues the handwritten digits to the word), the right edge is the left edge of
the "/…" / "tháng" word (or, where Tesseract glued digits to it, its right edge minus the
printed word's width), and the rows are the word's top − 25 (30) px to its top + 75 (80) px.
One box was corrected by hand: qn-16-ct's day, where Tesseract glued the handwritten "7" to
"tháng" so that the derived box ended exactly at the 7's left edge (a box that leaves a digit out
cannot be read by anything; x1 1757 → 1812, the start of "tháng" itself). Nothing in the model
or in ``read_slot`` was tuned on these files.

The born-digital file (typed digits in a small raised font) is read too, as a control for
``handwritten`` (it should be False there); it is not counted in the figures.

The script exits 0 and prints "skipped" when the folder (or pdftoppm) is absent.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.extract.handwriting import TRUST_THRESHOLD, read_slot  # noqa: E402

DEFAULT_DIR = Path("/work/shared/real-scans")

#: (number slot, day slot) as (x0, y0, x1, y1) at 300 dpi on page 1. Evaluation only.
BOXES: dict[str, tuple[tuple[int, int, int, int], tuple[int, int, int, int]]] = {
    "qn-01-ttr.pdf": ((515, 493, 665, 592), (1617, 502, 1699, 612)),
    "qn-04-ct.pdf": ((506, 394, 628, 494), (1575, 413, 1671, 523)),
    "qn-09-ttr.pdf": ((518, 508, 668, 608), (1697, 525, 1757, 635)),
    "qn-11-ct.pdf": ((519, 489, 655, 589), (1563, 507, 1687, 617)),
    "qn-16-ct.pdf": ((561, 433, 687, 533), (1708, 426, 1812, 535)),  # day: see above
    "qn-23-bc.pdf": ((490, 340, 641, 440), (1611, 346, 1705, 452)),
    "qn-2352-cv-den-stamp.pdf": ((523, 361, 633, 461), (1685, 367, 1756, 472)),
    "qn-239-ttr.pdf": ((500, 439, 677, 539), (1623, 447, 1719, 557)),
    "qn-24-ttr.pdf": ((541, 435, 672, 535), (1597, 453, 1706, 559)),
    "qn-46-tb.pdf": ((551, 260, 662, 360), (1649, 299, 1754, 411)),
    "qn-53-tb.pdf": ((547, 331, 695, 431), (1554, 346, 1677, 458)),
    "qn-574-ub.pdf": ((443, 484, 571, 584), (1621, 474, 1691, 584)),
    "qn-575-ub.pdf": ((511, 378, 648, 478), (1644, 392, 1711, 500)),
    "qn-90-qd-ct.pdf": ((569, 309, 718, 409), (1693, 326, 1788, 433)),
}
#: Control for ``handwritten``: the born-digital file, whose number and day the e-office system
#: typed in a small raised font. Reported apart; not counted in the handwriting figures.
TYPED_BOXES = {"qn-565-tb-born-digital.pdf": ((500, 458, 678, 558), (1577, 464, 1685, 574))}


def render_page1(pdf: Path, tmp: Path) -> np.ndarray:
    out = tmp / pdf.stem
    subprocess.run(["pdftoppm", "-r", "300", "-f", "1", "-l", "1", "-png", str(pdf), str(out)], check=True, capture_output=True)
    png = sorted(tmp.glob(pdf.stem + "-*.png"))[0]
    return cv2.cvtColor(cv2.imread(str(png), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    ap.add_argument("--crops", type=Path, default=None, help="write each slot crop (with the digits' boxes) here")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    truth_path = args.dir / "truth.json"
    if not truth_path.exists() or shutil.which("pdftoppm") is None:
        print(f"skipped: {truth_path} or pdftoppm not available")
        return 0
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for name, entry in sorted(truth.items()):
            typed = name in TYPED_BOXES
            if not typed and (not {"number", "date"} <= set(entry.get("handwritten", [])) or name not in BOXES):
                continue
            page = render_page1(args.dir / name, Path(td))
            number = entry["fields"]["number"].split("/")[0]
            day = entry["fields"]["date"].split("-")[2]
            boxes = TYPED_BOXES[name] if typed else BOXES[name]
            for slot, box, want in (("number", boxes[0], number), ("day", boxes[1], day)):
                r = read_slot(page, box)
                rows.append(
                    {
                        "file": name,
                        "slot": slot,
                        "truth": want,
                        "read": r.text,
                        "confidence": round(r.confidence, 3),
                        "trusted": r.trusted,
                        "correct": r.text == want,
                        "digits": [(d[0], round(d[1], 3)) for d in r.digits],
                        "ink": r.ink,
                        "handwritten": r.handwritten,
                        "notes": list(r.notes),
                        "typed": typed,
                    }
                )
                if args.crops:
                    args.crops.mkdir(parents=True, exist_ok=True)
                    x0, y0, x1, y1 = box
                    crop = cv2.cvtColor(page[y0 - 20 : y1 + 20, x0 - 40 : x1 + 40], cv2.COLOR_RGB2BGR).copy()
                    for d in r.digits:
                        bx0, by0, bx1, by1 = d[2]
                        cv2.rectangle(crop, (bx0 - x0 + 40, by0 - y0 + 20), (bx1 - x0 + 40, by1 - y0 + 20), (0, 160, 0) if d[0] else (0, 0, 255), 1)
                    cv2.imwrite(str(args.crops / f"{Path(name).stem}-{slot}.png"), crop)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    print(f"{'file':26s} {'slot':6s} {'truth':>5s} {'read':>5s} {'conf':>6s} trusted  ink    hand  per-digit")
    for r in sorted(rows, key=lambda r: r["typed"]):
        if r["typed"] and r is next(x for x in rows if x["typed"]):
            print("-- control: typed digits (born-digital), handwritten should be False --")
        mark = "" if r["read"] is None else ("ok" if r["correct"] else "WRONG")
        print(
            f"{r['file']:26s} {r['slot']:6s} {r['truth']:>5s} {str(r['read']):>5s} {r['confidence']:6.3f} {('yes' if r['trusted'] else 'no'):4s} {mark:5s} {r['ink']:6s} {str(r['handwritten'])[0]:4s}  "
            + " ".join(f"{d[0]}:{d[1]:.2f}" for d in r["digits"])
            + (f"  ({', '.join(r['notes'])})" if r["notes"] else "")
        )
    control = [r for r in rows if r["typed"]]
    rows = [r for r in rows if not r["typed"]]
    trusted = [r for r in rows if r["trusted"]]
    wrong = sum(not r["correct"] for r in trusted)
    any_right = sum(r["correct"] for r in rows)
    print(
        f"\n{len(rows)} slots; threshold {TRUST_THRESHOLD}: {len(trusted)} trusted, {len(trusted) - wrong} right, {wrong} wrong; "
        f"{any_right} read right at any confidence; {sum(r['read'] is not None and not r['correct'] for r in rows)} wrong below or above the threshold"
    )
    print(
        f"handwritten flag: {sum(r['handwritten'] for r in rows)}/{len(rows)} handwritten slots True; "
        f"{sum(not r['handwritten'] for r in control)}/{len(control)} typed control slots False"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
