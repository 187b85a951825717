"""End to end on real components: a rendered multi-page PDF and bad inputs go through a real
Dask LocalCluster, a real SeaweedFS and the real signer over HTTP; records are verified and
exported."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pikepdf.pdfa as pdfa
import pytest

from pipeline.cli import main as sohoa
from pipeline.runtime.config import ClusterSettings, Settings
from pipeline.runtime.executor import DaskExecutor
from pipeline.runtime.inputs import iter_input_files
from pipeline.runtime.orchestrate import BatchRunner
from pipeline.signing.verify import verify_original, verify_pdf, verify_record_bytes
from pipeline.warehouse.layout import Warehouse

pytestmark = pytest.mark.slow


def pdfa_findings(data: bytes) -> list:
    """pikepdf's PDF/A-2b findings for ``data``, less the one kind that is not about the PDF: its
    content check records *any* warning raised meanwhile as a content-parse violation, and this
    test's Dask client and S3 connections are closed by the garbage collector at any time, which
    raises ``ResourceWarning: unclosed <socket ...>`` (seen once in a full run)."""
    import gc

    gc.collect()
    report = pdfa.validate_written(io.BytesIO(data), "2b")
    return [f for f in report.findings if "unclosed <socket" not in str(f)]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A folder with one rendered 2-page công văn PDF, one JPEG, and three bad inputs."""
    from samples.io import write_jpeg, write_pdf
    from samples.render import render_document
    from samples.specs import corpus_specs

    folder = tmp_path_factory.mktemp("scans")
    specs = {s.number: s for s in corpus_specs()}
    letter = specs["516/TTg-KSTT"]
    pages = render_document(letter, font="serif", dpi=200)
    write_pdf(pages[:2], folder / "cong-van-516.pdf", dpi=200)
    notice = specs["476/TB-VPCP"]
    write_jpeg(render_document(notice, font="serif", dpi=200)[0], folder / "thong-bao-476.jpg", dpi=200)
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "notes.png").write_bytes("không phải ảnh".encode())
    full = (folder / "cong-van-516.pdf").read_bytes()
    (folder / "truncated.pdf").write_bytes(full[: len(full) // 3])
    return folder, {"cong-van-516.pdf": letter, "thong-bao-476.jpg": notice}


def _run(folder: Path, settings: Settings, client):
    runner = BatchRunner(settings, DaskExecutor(client), Warehouse(settings.warehouse))
    return runner.run(iter_input_files([folder]))


def test_a_batch_of_scans_becomes_signed_records(batch, warehouse_settings, signer_service, dask_cluster, tmp_path):
    from distributed import Client

    folder, truth = batch
    settings = Settings(home=tmp_path, warehouse=warehouse_settings, signer=signer_service.settings,
                        cluster=ClusterSettings(scheduler_address=dask_cluster.scheduler_address))
    wh = Warehouse(warehouse_settings)
    wh.ensure_bucket()
    with Client(dask_cluster) as client:
        summary = _run(folder, settings, client)
        by_name = {o.source_file: o for o in summary.outcomes}

        # bad input fails alone, with a clear typed error, and the rest of the batch succeeds
        assert by_name["empty.pdf"].status == "failed" and by_name["empty.pdf"].error.code == "empty_file"
        assert by_name["notes.png"].status == "failed" and "not a" in by_name["notes.png"].error.message.lower()
        assert by_name["truncated.pdf"].status == "failed" and by_name["truncated.pdf"].error.stage == "load"
        for name in truth:
            assert by_name[name].status in ("ok", "needs_review"), by_name[name]
        assert by_name["cong-van-516.pdf"].pages == 2

        # the records: fields right, signed, verifiable offline, PDF and original intact
        anchors = [signer_service.settings.trust_anchor.read_bytes()]
        for name, spec in truth.items():
            doc = by_name[name].document_id
            data = wh.get_record_bytes(doc)
            record = json.loads(data)
            assert record["fields"]["number"] == spec.number
            assert record["fields"]["date"] == spec.date
            assert record["fields"]["issuer"].lower() == spec.issuer.lower()
            assert record["fields"]["doc_type"] == spec.doc_type
            assert verify_record_bytes(data, anchors).ok
            assert verify_original(wh.get_original(doc), record).ok
            pdf = wh.get_pdf(doc)
            pdf_report = verify_pdf(pdf, record, anchors)
            assert pdf_report.ok, pdf_report.problems
            # the revision before the PAdES signature's incremental update is PDF/A-2b as written
            # (pikepdf's validator does not handle the signature's form field itself)
            unsigned = pdf[: pdf.index(b"%%EOF") + len(b"%%EOF")] + b"\n"
            assert pdfa_findings(unsigned) == [], "the searchable PDF is PDF/A-2b"
            assert record["pages"][0]["words"], "word boxes are kept"
            assert 0 < record["field_confidence"]["number"] <= 1
        for name in ("empty.pdf", "notes.png", "truncated.pdf"):
            doc = by_name[name].document_id
            if doc:  # accepted (hash known): the failed record is stored
                record = wh.get_record(doc)
                assert record["status"] == "failed" and record["error"]["message"]

        # the index by number finds the document
        letter_id = by_name["cong-van-516.pdf"].document_id
        assert wh.lookup("number", "516/TTg-KSTT") == [letter_id]

        # re-running is idempotent: nothing is processed again, nothing duplicated
        versions_before = len(wh.record_versions(letter_id))
        again = _run(folder, settings, client)
        again_by_name = {o.source_file: o for o in again.outcomes}
        assert again_by_name["cong-van-516.pdf"].status == "skipped"
        assert len(wh.record_versions(letter_id)) == versions_before
        assert sum(1 for _ in wh.iter_record_ids()) == len({o.document_id for o in summary.outcomes if o.document_id})


def test_the_cli_digitizes_exports_and_verifies(batch, warehouse_settings, signer_service, tmp_path, capsys, monkeypatch):
    folder, truth = batch
    url = f"http://{warehouse_settings.access_key}:{warehouse_settings.secret_key}@{warehouse_settings.endpoint}/{warehouse_settings.bucket}"
    monkeypatch.setenv("SOHOA_SIGNER_USER", signer_service.settings.username)
    monkeypatch.setenv("SOHOA_SIGNER_PASSWORD", signer_service.settings.password)
    monkeypatch.setenv("SOHOA_SIGNER_PIN", signer_service.settings.pin)
    common = ["--home", str(tmp_path), "--warehouse", url, "--signer", signer_service.url]
    code = sohoa(["digitize", str(folder / "thong-bao-476.jpg"), *common, "--workers", "1", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "documents: 1" in out and "pages/second" in out

    assert sohoa(["export", *common]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    exported = lines[0]
    assert exported["source_file"] == "thong-bao-476.jpg"
    assert exported["fields"]["number"] == truth["thong-bao-476.jpg"].number
    assert "THÔNG BÁO" in exported["text"].upper()

    record_path = tmp_path / "record.json"
    wh = Warehouse(warehouse_settings)
    record_path.write_bytes(wh.get_record_bytes(exported["document_id"]))
    trust = str(signer_service.settings.trust_anchor)
    assert sohoa(["verify", str(record_path), "--trust", trust]) == 0
    data = record_path.read_bytes()
    record_path.write_bytes(data.replace(b'"version":1', b'"version":2', 1))
    assert sohoa(["verify", str(record_path), "--trust", trust]) != 0

    # the searchable PDF and the original are checked too; one changed byte in either fails,
    # named; the stored document (record, PDF, original) verifies from the warehouse
    record_path.write_bytes(data)
    doc = exported["document_id"]
    pdf_path, original_path = tmp_path / "doc.pdf", tmp_path / "original"
    pdf_path.write_bytes(wh.get_pdf(doc))
    original_path.write_bytes(wh.get_original(doc))
    files = ["--pdf", str(pdf_path), "--original", str(original_path), "--trust", trust]
    assert sohoa(["verify", str(record_path), *files]) == 0
    assert "record, searchable PDF, original" in capsys.readouterr().out
    assert sohoa(["verify", "--document", doc, "--home", str(tmp_path), "--warehouse", url, "--trust", trust]) == 0
    capsys.readouterr()
    for path, named in ((pdf_path, "searchable PDF: searchable PDF changed"), (original_path, "original: original file changed")):
        good = path.read_bytes()
        i = len(good) // 2
        path.write_bytes(good[:i] + bytes([good[i] ^ 0x20]) + good[i + 1:])
        assert sohoa(["verify", str(record_path), *files]) == 6
        assert named in capsys.readouterr().err
        path.write_bytes(good)
