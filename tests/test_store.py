"""Store stage: a document's artefacts are written (concurrently) before its record, the commit
point; a failed artefact write leaves no record and fails the document's store attempt with the
warehouse's typed error, so that the caller retries it. Real SeaweedFS and signer on loopback."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline._exec.tesseract import glyphless_font_pdf
from pipeline.runtime.clients import Runtime
from pipeline.runtime.config import Settings
from pipeline.runtime.document import base_record
from pipeline.runtime.errors import WarehouseUnavailableError
from pipeline.stages.models import PageOutput, PageResult, SourceRef
from pipeline.warehouse.layout import Warehouse
from pipeline.warehouse.store import store_document

PAGES = 3


class PageTwoFails(Warehouse):
    """The warehouse as it is, except that the write of page 2's image fails as S3 going away does."""

    def put_page_image(self, document_id: str, page: int, jpeg: bytes):
        if page == 2:
            raise WarehouseUnavailableError("S3 went away while page 2 was written")
        return super().put_page_image(document_id, page, jpeg)


def _document(tag: str) -> tuple[SourceRef, dict, list[PageOutput]]:
    buf = io.BytesIO()
    Image.fromarray(np.full((300, 200), 250, np.uint8)).save(buf, format="JPEG")
    outputs = [PageOutput(result=PageResult(page=n, width=200, height=300, dpi=100), image_jpeg=buf.getvalue(),
                          text_pdf=glyphless_font_pdf("vie")) for n in range(1, PAGES + 1)]  # fmt: skip
    ref = SourceRef(document_id=tag * 64, source_file=f"{tag}.pdf", size=1, original_key=f"originals/{tag}")
    return ref, base_record(ref, PAGES, [o.result for o in outputs], status="ok"), outputs


def test_every_artefact_is_stored_before_the_record(warehouse_settings, signer_service, tmp_path):
    settings = Settings(home=tmp_path, warehouse=warehouse_settings, signer=signer_service.settings)
    warehouse = Warehouse(warehouse_settings)
    warehouse.ensure_bucket()
    ref, record, outputs = _document("a")
    signed = store_document(Runtime(settings=settings, warehouse=warehouse), ref, record, outputs)
    assert warehouse.get_record(ref.document_id)["signature"] == signed.signature
    assert all(warehouse.get_page_image(ref.document_id, n) == outputs[0].image_jpeg for n in range(1, PAGES + 1))
    assert warehouse.get_pdf(ref.document_id)


def test_a_failed_artefact_write_leaves_no_record_and_says_why(warehouse_settings, signer_service, tmp_path):
    settings = Settings(home=tmp_path, warehouse=warehouse_settings, signer=signer_service.settings)
    warehouse = PageTwoFails(warehouse_settings)
    warehouse.ensure_bucket()
    ref, record, outputs = _document("b")
    with pytest.raises(WarehouseUnavailableError, match="page 2"):
        store_document(Runtime(settings=settings, warehouse=warehouse), ref, record, outputs)
    assert warehouse.get_record(ref.document_id) is None  # the commit point was not reached
    assert warehouse.get_page_image(ref.document_id, 1) is not None  # a re-creatable artefact, redone on retry
