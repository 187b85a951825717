"""Results of administrative procedures: generated forms carry valid identifiers, are read back
through the real OCR path, and are digitized end to end with their personal data encrypted at
rest, found again by personal id (a logged reuse), exported, verified and reported."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipeline.records.identifiers import is_valid_tax_code, parse_personal_id
from samples.forms import birth_certificate_spec, form_specs, household_business_spec

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
FORM_SCANS = {
    "birth_certificate": "giay-khai-sinh-419-2018.jpg",
    "household_business_registration": "ho-kinh-doanh-0388025909.pdf",
}


def _truth(name: str) -> dict:
    return json.loads((SAMPLES / "truth" / f"{Path(name).stem}.json").read_text(encoding="utf-8"))


def test_generated_identifiers_are_valid_and_consistent():
    rng = random.Random(5)
    for _ in range(40):
        birth = birth_certificate_spec(rng)
        pid = parse_personal_id(birth.fields["personal_id"])
        assert pid.birth_year == int(birth.fields["date_of_birth"][:4])
        assert pid.sex == ("female" if birth.fields["sex"] == "Nữ" else "male")
        assert birth.fields["date"] >= birth.fields["date_of_birth"]
        business = household_business_spec(rng)
        assert is_valid_tax_code(business.fields["business_code"])
        owner = parse_personal_id(business.fields["owner_personal_id"])
        assert owner.birth_year == int(business.fields["owner_date_of_birth"][:4])
    assert [s.to_dict() for s in form_specs(4, seed=1)] == [s.to_dict() for s in form_specs(4, seed=1)]


@pytest.mark.parametrize("record_type", sorted(FORM_SCANS))
def test_a_scanned_form_is_read_back_into_its_fields(record_type):
    from pipeline.runtime.config import Settings
    from pipeline.runtime.document import read_page
    from pipeline.stages.cleanup import cleanup_page
    from pipeline.stages.deskew import deskew_page
    from pipeline.stages.extract import classify, extract
    from pipeline.stages.load import probe, render_page
    from pipeline.stages.models import PageResult

    name = FORM_SCANS[record_type]
    data = (SAMPLES / "scans" / name).read_bytes()
    settings = Settings(home=Path("/nonexistent"))
    raster = render_page(data, probe(data, settings.limits), 1, settings.limits)
    page = cleanup_page(deskew_page(raster, settings.image), settings.image)
    page, (words, text, conf, _pdf, _s), _ = read_page(page, settings)
    height, width = page.color.shape[:2]
    result = PageResult(page=1, width=width, height=height, dpi=page.dpi, text=text, words=words,
                        mean_confidence=conf, image_sha256=raster.sha256)
    assert classify([result]) == record_type
    fields = extract([result]).fields
    truth = _truth(name)["fields"]
    wrong = {k: (fields.get(k), v) for k, v in truth.items() if fields.get(k) != v}
    assert not wrong, wrong


@pytest.mark.slow
def test_forms_are_digitized_with_personal_data_encrypted_and_found_by_personal_id(
    warehouse_settings, signer_service, tmp_path, capsys, monkeypatch
):
    from pipeline.cli import main as sohoa
    from pipeline.records.pii import keyring_path
    from pipeline.warehouse.audit import iter_audit, iter_reuse
    from pipeline.warehouse.layout import Warehouse

    url = warehouse_settings.url(with_secret=True)
    monkeypatch.setenv("SOHOA_SIGNER_USER", signer_service.settings.username)
    monkeypatch.setenv("SOHOA_SIGNER_PASSWORD", signer_service.settings.password)
    monkeypatch.setenv("SOHOA_SIGNER_PIN", signer_service.settings.pin)
    common = ["--home", str(tmp_path), "--warehouse", url, "--signer", signer_service.url]
    scans = [str(SAMPLES / "scans" / n) for n in FORM_SCANS.values()]
    assert sohoa(["digitize", *scans, *common, "--workers", "1", "--no-progress"]) == 0
    assert "documents: 2" in capsys.readouterr().out
    assert keyring_path(tmp_path).exists()  # the embedded default key ring was created

    birth = _truth(FORM_SCANS["birth_certificate"])["fields"]
    business = _truth(FORM_SCANS["household_business_registration"])["fields"]
    wh = Warehouse(warehouse_settings)
    stored = {r["record_type"]: r for r in wh.iter_records()}
    assert set(stored) == set(FORM_SCANS)
    for record_type, clear in (("birth_certificate", (birth["full_name"], birth["personal_id"])),
                               ("household_business_registration", (business["owner_name"], business["owner_personal_id"]))):
        data = wh.get_record_bytes(stored[record_type]["document_id"])
        for value in clear:
            assert value.encode() not in data, f"{value} in clear in the stored {record_type}"
        assert json.loads(data)["pii"]["fields"]
    assert stored["household_business_registration"]["fields"]["business_code"] == business["business_code"]  # public

    # the once-only lookup: by personal id through the catalog (blind index), logged as reuse
    assert sohoa(["find", *common, "--subject", birth["personal_id"], "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["document_id"] == stored["birth_certificate"]["document_id"]
    events = list(iter_reuse(wh))
    assert [d["document_id"] for e in events for d in e["documents"]] == [stored["birth_certificate"]["document_id"]]
    assert birth["personal_id"] not in json.dumps(events) + json.dumps(list(iter_audit(wh)))
    assert sohoa(["find", *common, "--subject", "001099000000", "--json"]) == 0
    assert capsys.readouterr().out == "" and len(list(iter_reuse(wh))) == 1  # nothing found, no reuse

    # export: encrypted by default; --decrypt shows the values and is audited
    assert sohoa(["export", *common]) == 0
    plain = {json.loads(x)["record_type"]: json.loads(x) for x in capsys.readouterr().out.splitlines()}
    assert plain["birth_certificate"]["fields"]["full_name"] is None
    assert "full_name" in plain["birth_certificate"]["encrypted_fields"]
    assert sohoa(["export", *common, "--decrypt"]) == 0
    clear = {json.loads(x)["record_type"]: json.loads(x) for x in capsys.readouterr().out.splitlines()}
    assert clear["birth_certificate"]["fields"]["full_name"] == birth["full_name"]
    assert clear["household_business_registration"]["fields"]["owner_personal_id"] == business["owner_personal_id"]
    assert any(e["action"] == "export.decrypt" for e in iter_audit(wh))

    # verification needs no key: the signature covers the encrypted record
    path = tmp_path / "birth.json"
    path.write_bytes(wh.get_record_bytes(stored["birth_certificate"]["document_id"]))
    assert sohoa(["verify", str(path), "--trust", str(signer_service.settings.trust_anchor)]) == 0

    # the reuse rate: 1 of 2 received documents reused
    assert sohoa(["report", *common]) == 0
    total = next(x for x in capsys.readouterr().out.splitlines() if " all " in x)
    assert total.split()[-2:] == ["1", "50.0%"]
