"""The e-document exchange package (edXML) between state agencies' e-office systems (issue 23).

QCVN 102:2016/BTTTT ("cấu trúc mã định danh và định dạng dữ liệu gói tin phục vụ kết nối các hệ
thống quản lý văn bản và điều hành") defines the package sent between e-office systems under
Decision 28/2018/QĐ-TTg. What sohoa writes and reads::

    <edXML:edXML xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">
      <edXML:edXMLEnvelope>
        <edXML:edXMLHeader>
          <edXML:MessageHeader>
            <edXML:From> OrganId OrganizationInCharge OrganName </edXML:From>
            <edXML:To> OrganId OrganName </edXML:To> ...
            <edXML:DocumentId>      OrganId,yyyy/mm/dd,number
            <edXML:Code> CodeNumber CodeNotation </edXML:Code>            số / ký hiệu
            <edXML:PromulgationInfo> Place PromulgationDate               địa danh, ngày (yyyy-mm-dd)
            <edXML:DocumentType> Type TypeDetail TypeName                 tên loại
            <edXML:Subject>, <edXML:Content>                              trích yếu
            <edXML:SignerInfo> Competence Position FullName               quyền hạn, chức vụ, họ tên
            <edXML:OtherInfo> PageAmount
          </edXML:MessageHeader>
          <edXML:TraceHeaderList> <edXML:TraceHeader> OrganId Timestamp
        </edXML:edXMLHeader>
        <edXML:edXMLBody> <edXML:edXMLManifest version="1.0">
            <edXML:Reference> ContentId ContentType AttachmentName Description
      </edXML:edXMLEnvelope>
      <AttachmentEncoded> <Attachment> ContentId AttachmentName ContentType
          <edXML:ContentTransferEncoded> base64 </Attachment> </AttachmentEncoded>
    </edXML:edXML>

Confirmed from public implementations of the Government Office's exchange gateway (their
parsers and writers use exactly these names and this namespace): the root, envelope, header,
``MessageHeader`` children From/To (OrganId, OrganizationInCharge, OrganName), DocumentId,
Code/CodeNumber/CodeNotation, PromulgationInfo/Place/PromulgationDate, DocumentType/Type/
TypeDetail/TypeName, Subject, Content, SignerInfo/Competence/Position/FullName,
TraceHeaderList/TraceHeader/OrganId/Timestamp, edXMLBody/edXMLManifest/Reference and the
``AttachmentEncoded`` section outside the envelope. Our best reading, not confirmed against the
QCVN text: the DocumentId structure (``OrganId,yyyy/mm/dd,số/ký hiệu``), the date format of
PromulgationDate (we write ISO 8601 and read ISO or dd/mm/yyyy), the ``Type`` code (we write 1
and rely on TypeName), OtherInfo/PageAmount. Gateways zip an attachment before base64; we write
it plain and read both.

Not written: the package's XML-DSig ``Signature`` (sohoa signs through a CSC service, not
XML-DSig). Integrity travels instead in the attachments: the PDF is PAdES-signed, and the signed
record (``record.json``, RFC 8785 + CSC signature) is attached for ``sohoa verify``.

Agency codes follow the national structure already used for unit codes (``000.00.01.H53``;
:data:`pipeline.records.archive.AGENCY_CODE`).
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from pipeline.records.archive import AGENCY_CODE
from pipeline.records.record import FieldEvidence, Record, load_record

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
PACKAGE_SOURCE = "package"

#: Record fields (admin_document) a package carries.
PACKAGE_FIELDS = ("number", "doc_type", "issuer", "issuer_parent", "place", "date", "subject", "signer",
                  "signer_title", "authority_prefix")


class PackageError(ValueError):
    """Not an edXML package, or one sohoa cannot read."""


@dataclass(frozen=True)
class Agency:
    code: str
    name: str | None = None
    in_charge: str | None = None

    def __post_init__(self) -> None:
        if not AGENCY_CODE.match(self.code or ""):
            raise PackageError(f"agency code {self.code!r} does not follow the national structure (e.g. 000.00.01.H53)")

    @classmethod
    def parse(cls, text: str) -> Agency:
        """``CODE`` or ``CODE:Name`` (command line)."""
        code, _, name = text.partition(":")
        return cls(code.strip(), name.strip() or None)


@dataclass
class Attachment:
    name: str
    content_type: str
    data: bytes
    content_id: str = ""
    description: str | None = None


@dataclass
class Package:
    document_id: str | None
    sender: Agency | None
    recipients: list[Agency]
    fields: dict[str, Any]
    attachments: list[Attachment]
    page_amount: int | None = None
    trace: list[dict[str, str]] = field(default_factory=list)

    @property
    def field_evidence(self) -> dict[str, dict[str, Any]]:
        """Evidence of each field the package gave: ``source: package``."""
        return {k: {"page": None, "boxes": [], "method": PACKAGE_SOURCE, "source": PACKAGE_SOURCE} for k in self.fields}

    def document(self) -> Attachment | None:
        """The attachment to digitize: the first PDF or image."""
        for a in self.attachments:
            if a.content_type == "application/pdf" or a.content_type.startswith("image/"):
                return a
        return None


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    el = ET.SubElement(parent, _q(tag))
    if text is not None:
        el.text = str(text)
    return el


def _party(parent: ET.Element, tag: str, agency: Agency, name: str | None = None, in_charge: str | None = None) -> None:
    """From/To. For From, ``name``/``in_charge`` are the record's issuer and its parent body: the
    document's issuer is the sender, so they win over the agency's configured name."""
    el = _sub(parent, tag)
    _sub(el, "OrganId", agency.code)
    _sub(el, "OrganizationInCharge", in_charge or agency.in_charge or "")
    _sub(el, "OrganName", name or agency.name or "")


def write_package(
    record: Mapping[str, Any],
    pdf: bytes,
    *,
    sender: Agency,
    recipients: Sequence[Agency] = (),
    record_bytes: bytes | None = None,
    pdf_name: str | None = None,
    at: datetime | None = None,
) -> bytes:
    """An edXML package of a signed admin_document record and its searchable PDF (and, when given,
    the signed record's bytes as ``record.json``)."""
    if record.get("record_type") != "admin_document":
        raise PackageError(f"an edXML package carries a văn bản (admin_document), not a {record.get('record_type')}")
    f = record.get("fields") or {}
    number = f.get("number") or ""
    code_number, _, code_notation = number.partition("/")
    when = (at or datetime.now(UTC)).replace(microsecond=0)
    ET.register_namespace("edXML", NS)
    root = ET.Element(_q("edXML"))
    envelope = _sub(root, "edXMLEnvelope")
    header = _sub(envelope, "edXMLHeader")
    msg = _sub(header, "MessageHeader")
    _party(msg, "From", sender, f.get("issuer"), f.get("issuer_parent"))
    for agency in recipients:
        _party(msg, "To", agency)
    date = f.get("date") or ""
    _sub(msg, "DocumentId", f"{sender.code},{date.replace('-', '/')},{number}")
    code = _sub(msg, "Code")
    _sub(code, "CodeNumber", code_number)
    _sub(code, "CodeNotation", code_notation)
    prom = _sub(msg, "PromulgationInfo")
    _sub(prom, "Place", f.get("place") or "")
    _sub(prom, "PromulgationDate", date)
    dtype = _sub(msg, "DocumentType")
    _sub(dtype, "Type", 1)
    _sub(dtype, "TypeDetail", 0)
    _sub(dtype, "TypeName", f.get("doc_type") or "")
    _sub(msg, "Subject", f.get("subject") or "")
    _sub(msg, "Content", f.get("subject") or "")
    signer = _sub(msg, "SignerInfo")
    _sub(signer, "Competence", f.get("authority_prefix") or "")
    _sub(signer, "Position", f.get("signer_title") or "")
    _sub(signer, "FullName", f.get("signer") or "")
    other = _sub(msg, "OtherInfo")
    _sub(other, "PageAmount", record.get("page_count") or 0)
    traces = _sub(header, "TraceHeaderList")
    trace = _sub(traces, "TraceHeader")
    _sub(trace, "OrganId", sender.code)
    _sub(trace, "Timestamp", when.strftime("%Y/%m/%d %H:%M:%S"))

    attachments = [Attachment(pdf_name or f"{record['document_id'][:16]}.pdf", "application/pdf", pdf,
                              "cid:1", "Bản số hóa (PDF/A-2b, ký số PAdES)")]
    if record_bytes is not None:
        attachments.append(Attachment("record.json", "application/json", record_bytes, "cid:2",
                                      "Bản ghi sohoa đã ký (RFC 8785, CSC)"))
    body = _sub(envelope, "edXMLBody")
    manifest = _sub(body, "edXMLManifest")
    manifest.set("version", "1.0")
    encoded = ET.SubElement(root, "AttachmentEncoded")
    for a in attachments:
        ref = _sub(manifest, "Reference")
        _sub(ref, "ContentId", a.content_id)
        _sub(ref, "ContentType", a.content_type)
        _sub(ref, "AttachmentName", a.name)
        _sub(ref, "Description", a.description or "")
        att = ET.SubElement(encoded, "Attachment")
        ET.SubElement(att, "ContentId").text = a.content_id
        ET.SubElement(att, "AttachmentName").text = a.name
        ET.SubElement(att, "ContentType").text = a.content_type
        ET.SubElement(att, _q("ContentTransferEncoded")).text = base64.b64encode(a.data).decode("ascii")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def is_package(data: bytes) -> bool:
    """Whether the bytes are an edXML package (recognised by content, not by name)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") and (NS.encode() in head or b"edXMLEnvelope" in head)


def _text(parent: ET.Element | None, *path: str) -> str | None:
    el = parent
    for tag in path:
        if el is None:
            return None
        el = el.find(_q(tag)) if el.find(_q(tag)) is not None else el.find(tag)
    if el is None:
        return None
    text = " ".join((el.text or "").split())
    return text or None


def _date(text: str | None) -> str | None:
    if not text:
        return None
    m = re.match(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})", text)
    if m:
        return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}"
    m = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if m:
        return f"{int(m.group(3)):04d}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return None


def _decode(b64: str) -> bytes:
    data = base64.b64decode("".join(b64.split()), validate=True)
    if data[:4] == b"PK\x03\x04":  # the gateways zip an attachment before base64
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            if len(names) == 1:
                return z.read(names[0])
    return data


def _agency(el: ET.Element) -> Agency | None:
    code = _text(el, "OrganId")
    if not code:
        return None
    try:
        return Agency(code, _text(el, "OrganName"), _text(el, "OrganizationInCharge"))
    except PackageError:
        return None


def read_package(data: bytes) -> Package:
    """The metadata (as record fields, each with ``source: package`` evidence) and the attachments."""
    if not is_package(data):
        raise PackageError("not an edXML package (no edXML envelope)")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise PackageError(f"edXML package is not well-formed XML: {exc}") from exc
    envelope = root if root.tag == _q("edXMLEnvelope") else root.find(_q("edXMLEnvelope"))
    msg = envelope.find(f"{_q('edXMLHeader')}/{_q('MessageHeader')}") if envelope is not None else None
    if msg is None:
        raise PackageError("edXML package without edXMLHeader/MessageHeader")
    assert envelope is not None  # the message header was found inside it
    from_el = msg.find(_q("From"))
    sender = _agency(from_el) if from_el is not None else None
    recipients = [a for a in (_agency(el) for el in msg.findall(_q("To"))) if a]
    number_part, notation = _text(msg, "Code", "CodeNumber"), _text(msg, "Code", "CodeNotation")
    number = f"{number_part}/{notation}" if number_part and notation else number_part
    fields = {
        "number": number,
        "doc_type": _text(msg, "DocumentType", "TypeName"),
        "issuer": _text(from_el, "OrganName") if from_el is not None else None,
        "issuer_parent": _text(from_el, "OrganizationInCharge") if from_el is not None else None,
        "place": _text(msg, "PromulgationInfo", "Place"),
        "date": _date(_text(msg, "PromulgationInfo", "PromulgationDate")),
        "subject": _text(msg, "Subject") or _text(msg, "Content"),
        "signer": _text(msg, "SignerInfo", "FullName"),
        "signer_title": _text(msg, "SignerInfo", "Position"),
        "authority_prefix": _text(msg, "SignerInfo", "Competence"),
    }
    fields = {k: v for k, v in fields.items() if v}
    pages = _text(msg, "OtherInfo", "PageAmount")
    trace = [{"organ_id": _text(t, "OrganId") or "", "timestamp": _text(t, "Timestamp") or ""}
             for t in envelope.iterfind(f"{_q('edXMLHeader')}/{_q('TraceHeaderList')}/{_q('TraceHeader')}")]
    refs = {}
    manifest = envelope.find(f"{_q('edXMLBody')}/{_q('edXMLManifest')}")
    for ref in manifest.iterfind(_q("Reference")) if manifest is not None else []:
        refs[_text(ref, "ContentId")] = (_text(ref, "AttachmentName"), _text(ref, "ContentType"), _text(ref, "Description"))
    attachments: list[Attachment] = []
    for enc in list(root.iterfind("AttachmentEncoded")) + list(root.iterfind(_q("AttachmentEncoded"))):
        for att in list(enc.iterfind("Attachment")) + list(enc.iterfind(_q("Attachment"))):
            cid = _text(att, "ContentId") or ""
            payload = att.find(_q("ContentTransferEncoded"))
            if payload is None:
                payload = att.find("ContentTransferEncoded")
            if payload is None or not (payload.text or "").strip():
                continue
            name, ctype, desc = refs.get(cid, (None, None, None))
            attachments.append(Attachment(
                name=name or _text(att, "AttachmentName") or f"attachment-{len(attachments) + 1}",
                content_type=ctype or _text(att, "ContentType") or "application/octet-stream",
                data=_decode(payload.text or ""), content_id=cid, description=desc))
    return Package(document_id=_text(msg, "DocumentId"), sender=sender, recipients=recipients, fields=fields,
                   attachments=attachments, page_amount=int(pages) if pages and pages.isdigit() else None, trace=trace)


def apply_package(record: Record | Mapping[str, Any], package: Package, *, by: str | None = None,
                  at: datetime | None = None) -> Record:
    """The next version (unsigned) of the record digitized from a package's attachment: the
    package's metadata fills the fields (evidence ``method``/``source``: ``package``, confidence
    1.0) — it is the sender's own data, so it wins over what OCR read; the history says which
    fields the package changed. A record of another type than admin_document is returned as is."""
    from pipeline.service.review import apply_correction  # deferred: loads minio, urllib3, pikepdf

    current = record if isinstance(record, Record) else load_record(record)
    if current.record_type != "admin_document" or not package.fields:
        return current
    sender = package.sender.code if package.sender else "unknown"
    new = apply_correction(current, package.fields, reason=f"metadata of the edXML package from {sender}",
                           by=by or f"edxml:{sender}", at=at)
    evidence = dict(new.field_evidence)
    for name in package.fields:
        old = current.field_evidence.get(name) or FieldEvidence()
        evidence[name] = old.model_copy(update={"method": PACKAGE_SOURCE, "source": PACKAGE_SOURCE})
    new.field_evidence = evidence
    return new


def package_json(package: Package) -> dict[str, Any]:
    """A short, printable summary of a package (no attachment bytes)."""
    return {
        "document_id": package.document_id,
        "sender": package.sender.__dict__ if package.sender else None,
        "recipients": [a.__dict__ for a in package.recipients],
        "fields": package.fields,
        "attachments": [{"name": a.name, "content_type": a.content_type, "bytes": len(a.data)} for a in package.attachments],
    }


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
