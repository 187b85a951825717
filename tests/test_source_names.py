"""Issue 19 (12b): a file name carrying a personal id (or a labelled tax code) is stored masked:
in the original's metadata, the record, the manifest, and what the orchestrator reports."""

from __future__ import annotations

import io
from urllib.parse import unquote

import numpy as np
from PIL import Image

from pipeline._exec.tesseract import glyphless_font_pdf
from pipeline.runtime.clients import Runtime
from pipeline.runtime.config import Settings
from pipeline.runtime.document import base_record
from pipeline.runtime.inputs import InputFile
from pipeline.runtime.orchestrate import accept, accept_bytes
from pipeline.stages.models import PageOutput, PageResult, SourceRef
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.store import store_document

PERSONAL_ID = "001305012345"


def test_mask_identifiers_in_name():
    from pipeline.runtime.inputs import mask_identifiers_in_name

    assert mask_identifiers_in_name(f"khai-sinh-{PERSONAL_ID}.png") == "khai-sinh-************.png"
    assert mask_identifiers_in_name(f"giay_{PERSONAL_ID}_ban-sao.pdf") == "giay_************_ban-sao.pdf"
    assert mask_identifiers_in_name("MST_0101234567.pdf") == "MST_**********.pdf"
    # dates, document numbers and longer digit runs are no personal ids
    for name in ("scan 2023-10-27.pdf", "27-CT-TTg.pdf", "0013050123456.pdf", "van-ban.pdf"):
        assert mask_identifiers_in_name(name) == name


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((300, 200), 250, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _everything_stored(wh: Warehouse) -> str:
    """Every key, user metadata value and body in the bucket, as one string."""
    out = []
    for obj in wh.client.list_objects(wh.bucket, recursive=True):
        out.append(obj.object_name)
        stat = wh.client.stat_object(wh.bucket, obj.object_name)
        out.extend(unquote(str(v)) for v in (stat.metadata or {}).values())
        resp = wh.client.get_object(wh.bucket, obj.object_name)
        try:
            out.append(resp.read().decode("utf-8", "replace"))
        finally:
            resp.close()
            resp.release_conn()
    return "\n".join(out)


def test_a_personal_id_in_a_file_name_is_stored_nowhere(warehouse_settings, signer_service, tmp_path):
    path = tmp_path / f"khai-sinh-{PERSONAL_ID}.png"
    path.write_bytes(_png())
    settings = Settings(home=tmp_path, warehouse=warehouse_settings, signer=signer_service.settings)
    wh = Warehouse(warehouse_settings)
    wh.ensure_bucket()

    item = InputFile(path, explicit=True)
    assert PERSONAL_ID not in item.name
    ref = accept(item, wh, settings)
    assert isinstance(ref, SourceRef)
    assert ref.source_file == "khai-sinh-************.png"

    # the HTTP upload path hands the client's file name to accept_bytes as it came
    other = accept_bytes(_png() + b"\0", f"giay-{PERSONAL_ID}.png", wh, settings, unit="000.00.01.H53", dossier="HS-1")
    assert isinstance(other, SourceRef) and PERSONAL_ID not in other.source_file

    page = PageOutput(result=PageResult(page=1, width=200, height=300, dpi=100), image_jpeg=_png(),
                      text_pdf=glyphless_font_pdf("vie"))  # fmt: skip
    record = base_record(ref, 1, [page.result], status="ok")
    store_document(Runtime(settings=settings, warehouse=wh), ref, record, [page])
    wh.put_manifest("run-1", [{"document_id": ref.document_id, "source_file": ref.source_file, "status": "ok"}])

    assert wh.get_record(ref.document_id)["source_file"] == "khai-sinh-************.png"
    assert PERSONAL_ID not in _everything_stored(wh)
