"""Train ``models/admin_ner`` (spaCy NER over OCR'd header and signature text) from generated data.

Deterministic: fixed seeds for data (``random.Random``) and spaCy (``fix_random_seed``); the same
spaCy version gives the same model. No rendering, no OCR: the texts are built the way Tesseract
(psm 4) reads a Decree-30 page — header columns merged into one line ("ỦY BAN NHÂN DÂN CỘNG HÒA XÃ
HỘI CHỦ NGHĨA VIỆT NAM"), the number next to the place/date, a digital-signature stamp or an
incoming-mail stamp on top, and in the signature block "Nơi nhận" items interleaved with the title
and name lines — then given OCR-like noise: diacritics dropped or changed on a few characters,
O/0 and l/1 confusions, garbage tokens from seals, and sometimes a badly garbled type line.

It also writes ``lexicon.json`` into the model directory: syllable and syllable-bigram counts of
the same documents' clean text, which :func:`pipeline.extract.model.restore_marks` uses to put
back diacritics Tesseract drops on capitals.

Sources: ``samples.specs.synthetic_specs`` documents with ``split == "train"`` and the corpus
documents of the train split. Test-split documents are never used.

Run: ``.venv/bin/python models/train.py`` (= ``--docs 800 --epochs 10``, the committed model; about three
minutes on one CPU core, one thread: bit-identical files on every run);
``--lexicon-only`` rebuilds only ``lexicon.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import unicodedata
from pathlib import Path

# One BLAS/OpenMP thread: the same weights on every run (and a shared machine stays usable).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.extract.model import LABELS, NEWLINE  # noqa: E402

VERSION = "1.1.0"
SEED = 20240601

_SIMILAR = {
    "ỉ": "í", "ị": "i", "ế": "é", "ệ": "ẹ", "ộ": "ô", "ố": "ó", "ơ": "o", "ư": "u", "ạ": "a", "ả": "á",
    "ã": "â", "ờ": "ò", "ở": "ỡ", "ủ": "ú", "ữ": "ũ", "ậ": "ầ", "ặ": "ắ", "đ": "d", "Đ": "Đ", "Ỉ": "Í", "Ị": "I",
    "Ế": "É", "Ệ": "Ẹ", "Ộ": "Ô", "Ố": "Ó", "Ơ": "O", "Ư": "U", "Ạ": "A", "Ả": "Á", "Ờ": "Ò", "Ủ": "Ú", "Ậ": "Ầ",
    "0": "O", "1": "l", "5": "S", "8": "B",
}  # fmt: skip
_GARBAGE = ["|", "#", "“", "ị", "¡", "ÿ", "*", "Ñ", "£", "^?", "€", "ÿ]", "lụ", ":cÓ", "/F", "bš", "Í", "4", "—", "_"]


def strip_marks(ch: str) -> str:
    d = unicodedata.normalize("NFD", ch)
    base = "".join(c for c in d if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", base)


def noisy(text: str, rng: random.Random, p: float) -> str:
    out = []
    for ch in text:
        r = rng.random()
        if r < p / 2 and not ch.isspace():
            out.append(strip_marks(ch))
        elif r < p and ch in _SIMILAR:
            out.append(_SIMILAR[ch])
        else:
            out.append(ch)
    return "".join(out)


def wrap(text: str, width: int) -> list[str]:
    lines, cur = [], ""
    for w in text.split():
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    if cur:
        lines.append(cur)
    return lines


class Builder:
    """Tokens (whitespace words, ¶ between lines) with labelled spans."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.spans: list[tuple[int, int, str]] = []

    def newline(self) -> None:
        if self.tokens and self.tokens[-1] != NEWLINE:
            self.tokens.append(NEWLINE)

    def add(self, text: str, label: str | None = None) -> None:
        words = text.split()
        if not words:
            return
        start = len(self.tokens)
        self.tokens.extend(words)
        if label:
            self.spans.append((start, len(self.tokens), label))


def _issuer_lines(name: str, rng: random.Random) -> list[str]:
    up = name.upper()
    for head in ("ỦY BAN NHÂN DÂN ", "HỘI ĐỒNG NHÂN DÂN "):
        if up.startswith(head) and len(up) > len(head):
            return [head.strip(), up[len(head):]]
    return wrap(up, rng.choice([22, 28, 34]))


def header_example(spec, rng: random.Random) -> Builder:
    from samples.specs import date_line

    b = Builder()
    p = rng.choice([0.0, 0.02, 0.04, 0.07])
    if rng.random() < 0.3:  # digital-signature stamp text above the header
        for s in rng.sample(["Trung tâm Công báo và Tin học", "ttcbth@quangngai.gov.vn", "Ủy ban nhân dân tỉnh",
                             "03.12.2021 16:41:00 +07:00", "G€Œ A ttcbth0)quangnga1.øov.vn"], k=rng.randint(1, 3)):
            b.add(noisy(s, rng, 0.1))
            b.newline()
    left: list[tuple[str, str]] = []
    if spec.issuer_parent:
        left += [(s, "PARENT") for s in wrap(spec.issuer_parent.upper(), rng.choice([24, 30, 40]))]
    left += [(s, "ISSUER") for s in _issuer_lines(spec.issuer, rng)]
    right = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]
    if rng.random() < 0.15:
        right[0] = noisy(right[0], rng, 0.3)
    merge = rng.random() < 0.85
    rows = max(len(left), len(right))
    for i in range(rows):
        if i < len(left):
            b.add(noisy(left[i][0], rng, p), left[i][1])
            if not merge:
                b.newline()
        if i < len(right):
            b.add(noisy(right[i], rng, p))
        b.newline()
    if rng.random() < 0.3:
        b.add(rng.choice(["———", "—", "_____"]))
        b.newline()
    number = spec.number
    if rng.random() < 0.1:  # handwritten number
        number = rng.choice(["#", "", "...", "4"]) + " /" + number.split("/", 1)[1]
        b.add("Số:")
        b.add(noisy(number, rng, p))
    else:
        b.add("Số:")
        b.add(noisy(number, rng, p / 2), "NUMBER")
    if not merge:
        b.newline()
    place, _, rest = date_line(spec).partition(", ")
    b.add(noisy(place + ",", rng, p))
    b.add(noisy(rest, rng, p / 2), "DATE")
    b.newline()
    if rng.random() < 0.15:  # incoming-mail stamp
        b.add(rng.choice(["CÔNG VĂN ĐẾN", "ĐẾN", "CV ĐẾN"]))
        b.newline()
        b.add(f"Số: {rng.randint(10, 9999)}")
        b.newline()
        b.add(f"Ngày: {rng.randint(1, 28)}/{rng.randint(1, 12)}")
        b.newline()
    if spec.is_letter:
        for k, s in enumerate(wrap(f"V/v {spec.subject}", rng.choice([32, 38, 44]))):
            if k == 0:
                b.add("V/v")
                s = s[4:]
            b.add(noisy(s, rng, p), "SUBJECT")
            b.newline()
    else:
        t = spec.doc_type.upper()
        tp = 0.35 if rng.random() < 0.3 else p
        if rng.random() < 0.2:
            b.add(rng.choice(_GARBAGE))
        b.add(noisy(t, rng, tp), "DOCTYPE")
        b.newline()
        for s in wrap(spec.subject, rng.choice([55, 62, 70])):
            if rng.random() < 0.1:
                b.add(rng.choice(_GARBAGE))
            b.add(noisy(s, rng, p), "SUBJECT")
            b.newline()
    for para in spec.body[:1]:
        for s in wrap(para, 75)[: rng.randint(1, 3)]:
            b.add(noisy(s, rng, p))
            b.newline()
    return b


def signature_example(spec, rng: random.Random) -> Builder:
    from samples.specs import signature_lines

    b = Builder()
    p = rng.choice([0.0, 0.02, 0.05])
    if rng.random() < 0.25:  # a signature page of its own: the block under the page number
        b.add(rng.choice(["2", "3", "4"]))
        b.newline()
    else:
        for s in wrap(spec.body[-1], 75)[-rng.randint(1, 2):]:
            b.add(noisy(s, rng, p))
            b.newline()
    sig = signature_lines(spec)
    labelled: list[tuple[str, str]] = []
    if spec.authority_prefix:
        labelled.append((sig[0], "PREFIX"))
        sig = sig[1:]
    for s in sig:
        labelled += [(x, "TITLE") for x in wrap(s, 30)]
    left = []
    if spec.recipients and rng.random() < 0.8:
        left = ["Nơi nhận:"] + [f"- {r};" for r in spec.recipients]
        left = [x for r in left for x in wrap(r, 40)]
    gap_rows = rng.randint(2, 5)
    right = labelled + [(rng.choice(_GARBAGE), None) for _ in range(rng.randint(0, 2))] + [("", None)] * gap_rows
    right.append((spec.signer.upper() if rng.random() < 0.15 else spec.signer, "SIGNER"))
    rows = max(len(left), len(right))
    for i in range(rows):
        if i < len(left):
            b.add(noisy(left[i], rng, p))
        if i < len(right) and right[i][0]:
            b.add(noisy(right[i][0], rng, p if right[i][1] != "SIGNER" else p / 2), right[i][1])
        b.newline()
    return b


def examples(n_docs: int, seed: int):
    rng = random.Random(seed)
    specs, corpus = training_specs(n_docs, seed)
    specs = specs + corpus * 5
    out = []
    for spec in specs:
        out.append(header_example(spec, rng))
        out.append(signature_example(spec, rng))
    rng.shuffle(out)
    return out


def training_specs(n_docs: int, seed: int):
    """The documents both parts learn from: train-split synthetic specs and train corpus texts."""
    from samples.specs import corpus_specs, synthetic_specs

    specs = [s for s in synthetic_specs(int(n_docs * 1.3) + 10, seed=seed) if s.split == "train"][:n_docs]
    return specs, [s for s in corpus_specs() if s.split == "train"]


def build_lexicon(specs) -> dict:
    """Syllable counts (written forms) and syllable-bigram counts of the documents' clean text
    (header, body, signature block, Nơi nhận as printed); bigrams seen once are dropped."""
    from collections import Counter

    from pipeline.extract.model import syllable_runs

    from samples.specs import spec_text

    uni: Counter = Counter()
    bi: Counter = Counter()
    for spec in specs:
        for line in spec_text(spec).splitlines():
            for run in syllable_runs(line):
                uni.update(run)
                bi.update(f"{a} {b}" for a, b in zip(run, run[1:], strict=False))
    return {
        "unigrams": dict(sorted(uni.items())),
        "bigrams": dict(sorted((k, v) for k, v in bi.items() if v >= 2)),
    }


def to_example(nlp, b: Builder):
    from spacy.tokens import Doc, Span
    from spacy.training import Example

    pred = Doc(nlp.vocab, words=b.tokens)
    ref = Doc(nlp.vocab, words=b.tokens)
    ref.ents = [Span(ref, s, e, label=lab) for s, e, lab in b.spans if e > s]
    return Example(pred, ref)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=800)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "admin_ner")
    ap.add_argument("--lexicon-only", action="store_true", help="rebuild only lexicon.json (the NER is left as it is)")
    args = ap.parse_args(argv)

    synth, corpus = training_specs(args.docs, SEED)
    lexicon = build_lexicon(synth + corpus)
    if args.lexicon_only:
        write_lexicon(args.out, lexicon)
        return 0

    import spacy
    from spacy.util import fix_random_seed, minibatch

    fix_random_seed(SEED)
    nlp = spacy.blank("vi", config={"nlp": {"tokenizer": {"use_pyvi": False}}})
    ner = nlp.add_pipe("ner")
    for label in LABELS:
        ner.add_label(label)
    data = examples(args.docs, SEED)
    n_dev = max(50, len(data) // 20)
    train = [to_example(nlp, b) for b in data[n_dev:]]
    dev = [to_example(nlp, b) for b in data[:n_dev]]
    nlp.initialize(lambda: train)
    rng = random.Random(SEED)
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        rng.shuffle(train)
        losses: dict = {}
        for batch in minibatch(train, size=32):
            nlp.update(batch, drop=0.2, losses=losses)
        scores = nlp.evaluate(dev)
        print(f"epoch {epoch + 1:2d}  loss {losses.get('ner', 0):8.1f}  dev F {scores['ents_f']:.3f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    nlp.meta.update({"name": "admin_ner", "version": VERSION, "lang": "vi",
                     "description": "NER over OCR'd Decree-30 headers/signature blocks (sohoa models/train.py)",
                     "performance": {k: v for k, v in scores.items() if k.startswith("ents_") and k != "ents_per_type"},
                     "sohoa_training": {"docs": args.docs, "epochs": args.epochs, "seed": SEED}})  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(args.out)
    write_lexicon(args.out, lexicon)
    per_type = scores.get("ents_per_type", {})
    (args.out.parent / "admin_ner.scores.json").write_text(json.dumps(per_type, indent=1, ensure_ascii=False))
    print(json.dumps({k: round(v["f"], 3) for k, v in per_type.items()}))
    return 0


def write_lexicon(out: Path, lexicon: dict) -> None:
    from pipeline.extract.model import LEXICON_FILE

    out.mkdir(parents=True, exist_ok=True)
    (out / LEXICON_FILE).write_text(json.dumps(lexicon, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    print(f"lexicon: {len(lexicon['unigrams'])} syllables, {len(lexicon['bigrams'])} bigrams")


if __name__ == "__main__":
    raise SystemExit(main())
