"""The catalog against a real S3 server (SeaweedFS): deltas, compaction, rebuild, queries."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest

from pipeline.records.pii import KeyRing, encrypt_fields, keyring_path
from pipeline.runtime.errors import ConfigurationError
from pipeline.signing.sign import canonical_bytes
from pipeline.warehouse.catalog import Catalog, catalog_add, catalog_row, compact, fold_text, normalize_number, rebuild
from pipeline.warehouse.catalog.index import DELTA_PREFIX, MANIFEST_KEY, list_objects, read_manifest

PID = "001305012345"


def doc_id(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def admin(name: str, number: str, issuer: str, date: str, *, version: int = 1, status: str = "ok",
          doc_type: str = "Quyết định", unit: str = "000.00.01.H26") -> dict:
    return {
        "record_type": "admin_document",
        "document_id": doc_id(name),
        "version": version,
        "source_file": f"{name}.pdf",
        "status": status,
        "fields": {"number": number, "doc_type": doc_type, "issuer": issuer, "date": date, "signer": "Nguyễn Văn A"},
        "provenance": {"unit": unit},
    }


def birth(name: str, personal_id: str, ring: KeyRing) -> dict:
    record = {
        "record_type": "birth_certificate",
        "document_id": doc_id(name),
        "version": 1,
        "source_file": f"{name}.pdf",
        "status": "ok",
        "fields": {"number": "125", "full_name": "Trần Văn Bình", "personal_id": personal_id,
                   "issuer": "UBND phường Dịch Vọng", "date": "2024-03-12"},
        "text": f"Trần Văn Bình {personal_id}",
        "pages": [],
        "provenance": {"unit": "000.00.01.H26"},
    }
    return encrypt_fields(record, ring)


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


def _store(warehouse, record: dict) -> None:
    """What store_document does: catalog row first, then the record (the commit point)."""
    catalog_add(warehouse, record)
    warehouse.put_record(record["document_id"], canonical_bytes(record), status=record["status"])


@pytest.fixture
def filled(warehouse, ring):
    records = [
        admin("a", "5898/UBND-KSTT", "Ủy ban nhân dân thành phố Hà Nội", "2024-05-02"),
        admin("b", "12/QĐ-UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", "2023-11-20", status="needs_review"),
        admin("c", "45/2020/NĐ-CP", "Chính phủ", "2020-04-08", doc_type="Nghị định"),
        admin("d", "516/TTg-KSTT", "Thủ tướng Chính phủ", "2024-06-01", doc_type="Công văn"),
        birth("e", PID, ring),
    ]
    for record in records:
        _store(warehouse, record)
    return records


def ids(rows) -> set[str]:
    return {r["document_id"] for r in rows}


def test_normalisation():
    assert normalize_number(" 5898 / ubnd – kstt ") == "5898/UBND-KSTT"
    assert normalize_number("45/2020/nđ-cp") == "45/2020/NĐ-CP"
    assert fold_text("Ủy ban nhân dân  ĐÀ NẴNG") == "uy ban nhan dan da nang"


def test_row_never_holds_subject_in_clear(ring):
    row = catalog_row(birth("e", PID, ring))
    assert row["subjects"] and all(s.startswith(ring.current_kid + ":") for s in row["subjects"])
    assert PID not in json.dumps(row, default=str)


def test_find(warehouse, filled, ring, tmp_path):
    cat = Catalog(warehouse, tmp_path / "cache", keyring=ring)
    assert cat.count() == 5
    (row,) = cat.find(number="5898 / ubnd-kstt")
    assert row == {
        "document_id": doc_id("a"), "record_type": "admin_document", "number": "5898/UBND-KSTT",
        "doc_type": "Quyết định", "issuer": "Ủy ban nhân dân thành phố Hà Nội", "date": "2024-05-02",
        "status": "ok", "version": 1, "source_file": "a.pdf", "record_key": warehouse.record_key(doc_id("a")),
        "unit": "000.00.01.H26",
    }
    assert ids(cat.find(subject=PID)) == {doc_id("e")}
    assert ids(cat.find(subject="0013 0501 2345")) == {doc_id("e")}
    assert cat.find(subject="001305012346") == []
    assert ids(cat.find(issuer="uy ban nhan dan")) == {doc_id("a"), doc_id("b")}
    assert ids(cat.find(issuer="CHÍNH PHỦ")) == {doc_id("c"), doc_id("d")}
    assert ids(cat.find(date_from="2024-01-01", date_to="2024-05-31")) == {doc_id("a"), doc_id("e")}
    assert ids(cat.find(date_from="2024-01-01", issuer="chinh phu")) == {doc_id("d")}
    assert ids(cat.find(status="needs_review")) == {doc_id("b")}
    assert ids(cat.find(doc_type="nghi dinh")) == {doc_id("c")}
    assert ids(cat.find(doc_type="Giấy khai sinh")) == {doc_id("e")}
    assert [r["date"] for r in cat.find()] == ["2024-06-01", "2024-05-02", "2024-03-12", "2023-11-20", "2020-04-08"]
    assert len(cat.find(limit=2)) == 2
    assert Catalog(warehouse, tmp_path / "other").find(number="12/qđ-ubnd")[0]["document_id"] == doc_id("b")
    with pytest.raises(ConfigurationError):
        Catalog(warehouse, tmp_path / "nokeys").find(subject=PID)  # no key ring: no subject lookup


def test_new_version_replaces_old(warehouse, filled, tmp_path):
    cat = Catalog(warehouse, tmp_path / "cache", max_age_s=0)
    corrected = admin("b", "13/QĐ-UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", "2023-11-21", version=2)
    _store(warehouse, corrected)
    assert cat.find(number="12/QĐ-UBND") == []
    (row,) = cat.find(number="13/QĐ-UBND")
    assert row["version"] == 2 and row["status"] == "ok" and row["date"] == "2023-11-21"
    assert cat.count() == 5
    # an older version catalogued late (a slow worker) does not win
    catalog_add(warehouse, admin("b", "12/QĐ-UBND", "x", "2023-11-20", version=1))
    assert cat.find(number="12/QĐ-UBND") == [] and cat.count() == 5


def test_compact_keeps_answers(warehouse, filled, ring, tmp_path):
    _store(warehouse, admin("b", "13/QĐ-UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", "2023-11-21", version=2))
    cat = Catalog(warehouse, tmp_path / "cache", keyring=ring, max_age_s=0)
    before = list(cat.iter_all())
    assert len(list_objects(warehouse, DELTA_PREFIX)) == 6
    assert compact(warehouse) == 6
    assert list_objects(warehouse, DELTA_PREFIX) == []
    manifest = read_manifest(warehouse)
    assert manifest.generation == 1 and manifest.rows == 5
    assert list(cat.iter_all()) == before
    assert ids(cat.find(subject=PID)) == {doc_id("e")}
    assert compact(warehouse) == 0

    # deltas after a compaction are merged with the base; the previous generation is removed
    _store(warehouse, admin("f", "7/TB-VPCP", "Văn phòng Chính phủ", "2024-07-07"))
    assert cat.count() == 6
    assert compact(warehouse) == 1
    assert read_manifest(warehouse).generation == 2
    parts = [o.key for o in list_objects(warehouse, "catalog/base/") if o.key != MANIFEST_KEY]
    assert parts == list(read_manifest(warehouse).parts)
    assert cat.count() == 6 and cat.find(number="7/tb-vpcp")[0]["document_id"] == doc_id("f")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # stale cache files evicted: one part + manifest


def test_rebuild_equals_incremental(warehouse, filled, ring, tmp_path):
    _store(warehouse, admin("b", "13/QĐ-UBND", "Ủy ban nhân dân tỉnh Quảng Ninh", "2023-11-21", version=2))
    cat = Catalog(warehouse, tmp_path / "cache", keyring=ring, max_age_s=0)

    def view():
        return [{k: v for k, v in r.items()} for r in cat.iter_all()]

    incremental = view()
    assert rebuild(warehouse, grace_s=0) == 5
    assert list_objects(warehouse, DELTA_PREFIX) == []
    assert view() == incremental
    assert ids(cat.find(subject=PID)) == {doc_id("e")}


def test_concurrent_writers(warehouse, tmp_path):
    records = [admin(f"w{i}", f"{i}/CV-UBND", "UBND huyện Gia Lâm", "2024-01-01") for i in range(40)]
    errors: list[BaseException] = []

    def work(chunk):
        try:
            for r in chunk:
                catalog_add(warehouse, r)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(records[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    cat = Catalog(warehouse, tmp_path / "cache", max_age_s=0)
    cat.count()  # a reader during the writes
    for t in threads:
        t.join()
    assert not errors
    assert cat.count() == 40
    assert compact(warehouse) == 40
    assert cat.count() == 40 and cat.find(number="39/cv-ubnd")[0]["source_file"] == "w39.pdf"


def test_cli(warehouse, filled, ring, tmp_path, capsys):
    from pipeline.cli import main

    ring.save(keyring_path(tmp_path))
    base = ["--home", str(tmp_path), "--warehouse", warehouse.settings.url(with_secret=True)]
    assert main(["catalog", "compact", *base]) == 0
    assert "merged 5" in capsys.readouterr().out
    assert main(["find", *base, "--subject", PID, "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["document_id"] == doc_id("e")
    assert main(["find", *base, "--issuer", "uy ban", "--from", "2024-01-01"]) == 0
    out = capsys.readouterr().out
    assert "5898/UBND-KSTT" in out and "12/QĐ-UBND" not in out
    assert main(["catalog", "rebuild", *base]) == 0
    assert "5 document(s)" in capsys.readouterr().out
