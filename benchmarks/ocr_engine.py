"""CPU time of the in-process Tesseract a page: line images kept as PNM (sohoa) vs Tesseract 5.3's
own PNG round trip, on the same pages, in one process, alternating.

    OMP_THREAD_LIMIT=1 .venv/bin/python benchmarks/ocr_engine.py [--pages 12] [--reps 3] [--dpi 200]

Pages: sohoa's own OCR input of the throughput benchmark's batch (load → deskew → clean-up,
cached by benchmarks/throughput.py), downscaled to ``--dpi`` as ``pipeline.ocr.ocr_input``
does. Each repetition reads every page once with each setting (order swapped every other
repetition); the figure is the least CPU time a setting took over the repetitions, per page.
The TSV of both settings must be the same, byte for byte: the script says so, or fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=12)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dpi", type=int, default=200)
    args = parser.parse_args()
    os.environ["OMP_THREAD_LIMIT"] = "1"

    import numpy as np
    from PIL import Image

    from pipeline import linkpatch, tesseract
    from pipeline.ocr import ocr_input
    from throughput import make_batch, prepared_images

    _, pdfs = make_batch(40, 4)
    images = []
    for path in prepared_images(pdfs)[: args.pages]:
        image = np.asarray(Image.open(path))
        images.append(ocr_input(image, 300, args.dpi)[0])
    from workers.memory import keep_page_buffers

    keep_page_buffers()  # the allocator as in a worker (workers/memory.py)
    writer = tesseract.line_image_writer()
    if writer is None or not tesseract.line_images_as_pnm():
        print("the line-image redirect is not applied in this process: nothing to compare")
        return 1
    slot, png, pnm = writer
    settings = {"PNG (Tesseract's own)": png, "PNM (sohoa)": pnm}
    best = {name: float("inf") for name in settings}
    readings: dict[str, list[str]] = {}
    current = pnm
    for rep in range(args.reps):
        order = list(settings.items()) if rep % 2 == 0 else list(reversed(settings.items()))
        for name, target in order:
            if not linkpatch.redirect_import(slot, current, target):
                print("could not switch the redirect")
                return 1
            current = target
            t0 = time.process_time()
            tsv = [tesseract.run(img, dpi=args.dpi, lang="vie", psm=4, user_patterns=tesseract.PATTERNS_FILE,
                                 text_pdf=False).tsv for img in images]  # fmt: skip
            best[name] = min(best[name], (time.process_time() - t0) / len(images))
            if readings.setdefault(name, tsv) != tsv:
                print(f"{name}: the reading changed between repetitions")
                return 1
    linkpatch.redirect_import(slot, current, pnm)
    same = readings["PNG (Tesseract's own)"] == readings["PNM (sohoa)"]
    base = best["PNG (Tesseract's own)"]
    print(f"{len(images)} pages at {args.dpi} dpi, {args.reps} repetitions; CPU seconds a page (least of the repetitions)")
    for name, secs in best.items():
        print(f"  {name:<24} {secs:6.3f} s   {100 * (secs / base - 1):+5.1f} %")
    print(f"  the two readings are {'identical' if same else 'DIFFERENT'} (TSV, byte for byte)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
