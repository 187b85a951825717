"""Synthetic and corpus-based scans of Vietnamese administrative documents (Decree 30/2020/NĐ-CP).

* :mod:`samples.specs` — hand-written truth for the corpus texts and a synthetic document generator.
* :mod:`samples.render` — lays a :class:`~samples.specs.DocumentSpec` out as A4 page images.
* :mod:`samples.degrade` — scanner/office degradations (skew, blur, noise, JPEG, paper tone).
* :mod:`samples.io` — multi-page PDF / TIFF and JPEG / PNG writers.
* :mod:`samples.generate` — CLI: ``python -m samples.generate --out DIR [--count N] [--seed S]``.
"""
