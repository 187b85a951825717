"""``sohoa get`` (issue 19): an auditor takes a stored document out — its record exactly as
stored, its searchable PDF and its original — and ``sohoa verify`` checks them anywhere; and
``sohoa serve`` on a busy port fails early with a clear message and the bad-arguments code."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline.cli import main as sohoa
from pipeline.runtime.errors import ExitCode

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "scans" / "quyet-dinh-2773-qd-ubnd.png"


@pytest.fixture
def stored(warehouse_settings, signer_service, tmp_path, monkeypatch, capsys):
    """One bundled scan digitized into a fresh bucket through the CLI (in process, no cluster)."""
    import hashlib

    ws = warehouse_settings
    url = f"http://{ws.access_key}:{ws.secret_key}@{ws.endpoint}/{ws.bucket}"
    monkeypatch.setenv("SOHOA_SIGNER_USER", signer_service.settings.username)
    monkeypatch.setenv("SOHOA_SIGNER_PASSWORD", signer_service.settings.password)
    monkeypatch.setenv("SOHOA_SIGNER_PIN", signer_service.settings.pin)
    common = ["--home", str(tmp_path / "home"), "--warehouse", url]
    assert sohoa(["digitize", str(SAMPLE), *common, "--signer", signer_service.url, "--inline", "--no-progress"]) == 0
    capsys.readouterr()
    return hashlib.sha256(SAMPLE.read_bytes()).hexdigest(), common, str(signer_service.settings.trust_anchor)


def test_get_writes_what_is_stored_and_verify_checks_it_anywhere(stored, warehouse_settings, tmp_path, capsys):
    from pipeline.warehouse.layout import Warehouse

    doc, common, trust = stored
    out = tmp_path / "taken-out"
    assert sohoa(["get", doc, "-o", str(out), *common]) == 0
    record, pdf, original = out / "record.json", out / "searchable.pdf", out / "original.png"
    wh = Warehouse(warehouse_settings)
    assert record.read_bytes() == wh.get_record_bytes(doc)  # the exact bytes, not a re-serialisation
    assert pdf.read_bytes() == wh.get_pdf(doc)
    assert original.read_bytes() == SAMPLE.read_bytes()
    assert "sohoa verify" in capsys.readouterr().err

    files = ["--pdf", str(pdf), "--original", str(original), "--trust", trust]
    assert sohoa(["verify", str(record), *files]) == ExitCode.ok
    assert "record, searchable PDF, original" in capsys.readouterr().out
    for path in (record, pdf, original):
        good = path.read_bytes()
        i = len(good) // 2
        path.write_bytes(good[:i] + bytes([good[i] ^ 0x01]) + good[i + 1:])
        assert sohoa(["verify", str(record), *files]) == ExitCode.verification_failed, path.name
        capsys.readouterr()
        path.write_bytes(good)
    assert sohoa(["verify", str(record), *files]) == ExitCode.ok


def test_get_of_a_missing_document_is_a_clear_error(warehouse_settings, tmp_path, capsys):
    ws = warehouse_settings
    url = f"http://{ws.access_key}:{ws.secret_key}@{ws.endpoint}/{ws.bucket}"
    common = ["--home", str(tmp_path / "home"), "--warehouse", url]
    out = tmp_path / "nothing"
    code = sohoa(["get", "0" * 64, "-o", str(out), *common])
    assert code == ExitCode.bad_args
    assert f"no record for document {'0' * 64}" in capsys.readouterr().err
    assert not out.exists()
    assert sohoa(["get", "not-an-id", *common]) == ExitCode.bad_args
    assert "no document id" in capsys.readouterr().err


def test_serve_on_a_busy_port_says_so_with_the_bad_arguments_code(warehouse_settings, signer_service, tmp_path,
                                                                  monkeypatch, capsys):
    """Before issue 19 the services and a cluster started, then uvicorn failed to bind and the
    command exited 3 ("missing dependency"). Now the address is checked first."""
    pytest.importorskip("uvicorn")
    ws = warehouse_settings
    url = f"http://{ws.access_key}:{ws.secret_key}@{ws.endpoint}/{ws.bucket}"
    monkeypatch.setenv("SOHOA_SIGNER_USER", signer_service.settings.username)
    monkeypatch.setenv("SOHOA_SIGNER_PASSWORD", signer_service.settings.password)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = sohoa(["serve", "--home", str(tmp_path), "--warehouse", url, "--signer", signer_service.url,
                      "--workers", "1", "--host", "127.0.0.1", "--port", str(port)])
    assert code == ExitCode.bad_args != ExitCode.missing_dependency
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}" in err and "--port" in err
