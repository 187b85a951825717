"""Per-process runtime: the clients and models a worker loads once and reuses.

A Dask worker (see ``workers/plugin.py``) or the in-process executor asks
:func:`runtime_for` for the runtime of a :class:`~pipeline.runtime.config.Settings`; the first call
builds it (warehouse client, signer client, extraction model), later calls reuse it.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import __version__
from pipeline.runtime.config import Settings
from pipeline.warehouse.layout import Warehouse


@dataclass
class Runtime:
    settings: Settings
    warehouse: Warehouse
    _signer: object | None = None
    _keyring: object | None = None
    _originals: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def signer(self):
        """The remote signer client (built on first use)."""
        if self._signer is None:
            from pipeline.signing.sign import RemoteSigner  # deferred: loads numpy, cryptography, pydantic

            if self.settings.signer is None:
                raise RuntimeError("no signer configured")
            self._signer = RemoteSigner(self.settings.signer)
        return self._signer

    @property
    def keyring(self):
        """The PII key ring (loaded on first use), or None when none is configured."""
        if self._keyring is None:
            from pipeline.records.pii import writer_keyring  # deferred: loads numpy, cryptography, pydantic

            # a worker has no ring file: it encrypts with the public part the settings carry
            self._keyring = writer_keyring(self.settings.pii_keyring, self.settings.pii_encryption)
        return self._keyring

    def original(self, document_id: str) -> bytes:
        """Source bytes of a document, with a small cache (page tasks of one document share it)."""
        with self._lock:
            if document_id in self._originals:
                self._originals.move_to_end(document_id)
                return self._originals[document_id]
        data = self.warehouse.get_original(document_id)
        with self._lock:
            self._originals[document_id] = data
            while len(self._originals) > 4:
                self._originals.popitem(last=False)
        return data


_RUNTIMES: dict[Settings, Runtime] = {}
_RUNTIMES_LOCK = threading.Lock()


def runtime_for(settings: Settings) -> Runtime:
    with _RUNTIMES_LOCK:
        rt = _RUNTIMES.get(settings)
        if rt is None:
            if settings.warehouse is None:
                raise RuntimeError("runtime needs resolved warehouse settings")
            rt = Runtime(settings=settings, warehouse=Warehouse(settings.warehouse))
            _RUNTIMES[settings] = rt
        return rt


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def engine_versions(lang: str = "vie", ocr_engine: str = "library") -> dict[str, str]:
    """Versions of every engine and model that shapes a record (bound into its provenance);
    ``ocr_engine``: the engine that read the pages ("library": tesserocr's Tesseract, "cli":
    the executable's — two different Tesseract versions)."""
    import cv2  # deferred: loads cv2, numpy
    import numpy  # deferred: loads numpy
    import PIL  # deferred: loads PIL

    from pipeline._exec import tesseract  # deferred: loads tesserocr, numpy, PIL

    versions = {
        "sohoa": __version__,
        "tesseract": tesseract.tesseract_version(ocr_engine),
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
        "numpy": numpy.__version__,
    }
    try:
        import spacy  # deferred: optional dependency, its absence is handled here

        versions["spacy"] = spacy.__version__
    except ImportError:  # pragma: no cover
        pass
    for part in lang.split("+"):
        for base in (Path("/usr/share/tesseract-ocr/5/tessdata"), Path("/usr/share/tesseract-ocr/4.00/tessdata")):
            path = base / f"{part}.traineddata"
            if path.exists():
                versions[f"tessdata.{part}.sha256"] = _file_sha256(path)
                break
    try:
        from pipeline.stages.extract import model_version  # deferred: optional dependency, its absence is handled here

        versions["extraction_model"] = model_version()
    except ImportError:
        pass
    return versions
