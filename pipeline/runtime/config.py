"""Configuration, built once at the edge (CLI, API, worker preload) and passed down.

Nothing below this module reads the environment: stages receive the settings they need as
arguments. :func:`settings_from_env` is the only reader of ``SOHOA_*`` variables and is
called by the entry points only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.runtime.errors import ConfigurationError

#: seconds a remote call (S3, signer) retries a transient error before it fails, the same for
#: every stage (pipeline.runtime.retry: the one retry layer, its worst case stated there). Rides out an
#: outage of two minutes and more with nothing failed. ``SOHOA_RETRY_BUDGET_S``.
RETRY_BUDGET_S = 180.0


@dataclass(frozen=True)
class LimitSettings:
    """Bounds that protect workers from hostile or broken input."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 300
    # pixels a source image (a PNG/JPEG/TIFF frame, an image inside a PDF page) may declare:
    # above, it is refused before it is decoded (a decompression bomb)
    max_page_pixels: int = 60_000_000  # ~ A3 at 600 dpi
    # pixels of a page as it is worked on (deskewed, cleaned, OCR'd), decided before anything is
    # allocated: a page rendered or resampled to its working resolution never exceeds this
    # (~ A4 at 600 dpi, A2 at 300 dpi). A larger source is read at a lower resolution; a page so
    # large that it would need less than ``min_working_dpi`` is refused. Keeps one page of a
    # worker under 1 GiB at peak (tests/test_hostile_inputs.py).
    max_working_pixels: int = 36_000_000
    max_working_dpi: int = 600  # resolution a page is never worked on above (a finer one is reduced)
    min_working_dpi: int = 50  # below this a page's text cannot be read: too large a page is refused
    render_dpi: int = 300
    ocr_timeout_s: float = 180.0


@dataclass(frozen=True)
class ImageSettings:
    """Deskew and clean-up."""

    deskew: bool = True
    max_skew_deg: float = 20.0
    fix_orientation: bool = True
    # "on_low_confidence": Tesseract OSD (~1.7 s a page) only when a page's OCR confidence is low,
    # then the turned page is read again and the better reading kept; "always": OSD on every page.
    orientation_osd: str = "on_low_confidence"
    orientation_retry_below_conf: float = 60.0
    remove_borders: bool = True
    denoise: bool = True
    suppress_seals: bool = True
    target_dpi: int = 300
    jpeg_quality: int = 80


@dataclass(frozen=True)
class OcrSettings:
    lang: str = "vie"
    psm: int = 4
    oem: int = 1
    # "library": Tesseract in the worker process (tesserocr), language data loaded once; "cli":
    # one ``tesseract`` process per page (same words, ~0.3 s a page more; a crash costs one page)
    engine: str = "library"
    # opt-in, off by default: the library engine keeps its line images as PNM instead of a PNG
    # round trip, by rewriting one pointer of libtesseract's global offset table in each worker
    # (pipeline._exec.tesseract.line_images_as_pnm; benchmarks/ocr_engine.py measures what it saves).
    # ``SOHOA_OCR_LINE_IMAGES=pnm``
    line_images_pnm: bool = False
    # resolution Tesseract reads at: a finer page is downscaled for OCR only (word boxes are
    # mapped back; the stored page image keeps its resolution). 0: the page's own resolution.
    ocr_dpi: int = 200
    # the first pages of a document are read at their own resolution all the same: the header
    # (số, ký hiệu, cơ quan ban hành, trích yếu) is there, and its small capitals read better at
    # 300 dpi (benchmarks/extraction.py: number 100 % at 300 dpi, 95.6 % at 200 dpi)
    full_resolution_pages: int = 1
    preserve_interword_spaces: bool = True
    user_patterns: bool = True
    min_page_confidence: float = 70.0
    # words below this confidence that are no plausible token or are drawn in coloured ink
    # (signature scribble, seal remains) are dropped (pipeline.stages.ocr.drop_non_text)
    drop_non_text: bool = True
    non_text_max_conf: float = 60.0
    # reading order from the page layout: header columns, signature / "Nơi nhận" (pipeline.stages.layout)
    layout_order: bool = True


@dataclass(frozen=True)
class WarehouseSettings:
    """S3 endpoint of the warehouse. ``endpoint`` is ``host:port``."""

    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)  # Settings travels in every Dask task: never in a repr or a log
    bucket: str = "sohoa"
    secure: bool = False
    region: str | None = None
    retention_days: int = 3650  # write-once retention of originals (compliance mode)
    retry_budget_s: float = RETRY_BUDGET_S  # transient S3 errors retried this long (pipeline.runtime.retry)

    @classmethod
    def from_url(cls, url: str, **overrides) -> WarehouseSettings:
        """Parse ``http(s)://ACCESS:SECRET@host:port/bucket?retention_days=N``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "s3"):
            raise ConfigurationError(f"warehouse URL must be http://, https:// or s3://, got {url!r}")
        if not parts.hostname:
            raise ConfigurationError(f"warehouse URL has no host: {url!r}")
        access = unquote(parts.username or "") or overrides.pop("access_key", "")
        secret = unquote(parts.password or "") or overrides.pop("secret_key", "")
        if not access or not secret:
            raise ConfigurationError(
                "warehouse credentials missing: give them in the URL (http://KEY:SECRET@host:port/bucket) "
                "or in SOHOA_S3_ACCESS_KEY / SOHOA_S3_SECRET_KEY"
            )
        port = parts.port or (443 if parts.scheme == "https" else 80)
        bucket = parts.path.strip("/") or "sohoa"
        query = parse_qs(parts.query)
        kwargs: dict[str, Any] = dict(
            endpoint=f"{parts.hostname}:{port}",
            access_key=access,
            secret_key=secret,
            bucket=bucket,
            secure=parts.scheme == "https",
        )
        if "retention_days" in query:
            kwargs["retention_days"] = int(query["retention_days"][0])
        if "region" in query:
            kwargs["region"] = query["region"][0]
        kwargs.update(overrides)
        return cls(**kwargs)

    def url(self, *, with_secret: bool = False) -> str:
        scheme = "https" if self.secure else "http"
        cred = f"{self.access_key}:{self.secret_key if with_secret else '***'}@"
        return f"{scheme}://{cred}{self.endpoint}/{self.bucket}"


@dataclass(frozen=True)
class SignerSettings:
    """Remote signing service (CSC API). ``url`` is the service base, e.g. ``http://127.0.0.1:8700``."""

    url: str
    username: str
    password: str = field(repr=False)  # never in a repr or a log
    credential_id: str | None = None  # None: the first credential the signer lists
    pin: str | None = field(default=None, repr=False)  # PIN for credentials/authorize (SCAL2)
    timeout_s: float = 30.0
    trust_anchor: Path | None = None  # CA certificate (PEM) that verification trusts
    timestamp_url: str | None = None  # RFC 3161 TSA for PAdES B-T (e.g. URL + "/tsa"); None: B-B
    retry_attempts: int | None = None  # at most this many tries of one call (None: as many as the budget allows)
    retry_initial_delay_s: float = 0.2  # first backoff delay (doubles per try, capped at 10 s: pipeline.runtime.retry)
    retry_budget_s: float = RETRY_BUDGET_S  # transient signer errors retried this long (pipeline.runtime.retry)


@dataclass(frozen=True)
class ClusterSettings:
    """Where Dask tasks run: an address, or a LocalCluster of ``n_workers`` processes."""

    scheduler_address: str | None = None
    n_workers: int | None = None  # None: one per core
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    max_in_flight_documents: int | None = None  # None: 4 per worker


@dataclass(frozen=True)
class Settings:
    """Everything a run needs. Immutable: derive variants with :meth:`replace`."""

    home: Path
    warehouse: WarehouseSettings | None = None  # None: the embedded SeaweedFS
    signer: SignerSettings | None = None  # None: the embedded signer
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    image: ImageSettings = field(default_factory=ImageSettings)
    ocr: OcrSettings = field(default_factory=OcrSettings)
    model_dir: Path | None = None  # trained spaCy model; None: the bundled one in models/
    # PII key ring (Decree 13/2023: personal data encrypted at rest). None until resolved by
    # running_services: <home>/pii/keyring.json, created on first use. Readers (API, export,
    # review) need the file; workers do not (they get ``pii_encryption``), unless the ring's
    # current key is a legacy symmetric one.
    pii_keyring: Path | None = None
    # the encryption ring (current X25519 public key and blind-index key, JSON) that tasks carry
    # to the workers, set by the driver (pipeline.records.pii.with_encryption_keys): workers encrypt
    # personal data with it and hold nothing that decrypts (issue 22). Never in a repr.
    pii_encryption: str | None = field(default=None, repr=False)
    sign_pdf: bool = True
    force: bool = False  # reprocess documents already in the warehouse
    retry_budget_s: float = RETRY_BUDGET_S  # given to the embedded services' settings too (services.py)

    def replace(self, **changes) -> Settings:
        return replace(self, **changes)

    # the services :func:`pipeline.embedded.services.running_services` resolves: set on every settings it yields

    def resolved_warehouse(self) -> WarehouseSettings:
        if self.warehouse is None:
            raise ConfigurationError("no warehouse: these settings were not resolved by running_services")
        return self.warehouse

    def resolved_signer(self) -> SignerSettings:
        if self.signer is None:
            raise ConfigurationError("no signer: these settings were not resolved by running_services")
        return self.signer

    def resolved_pii_keyring(self) -> Path:
        if self.pii_keyring is None:
            raise ConfigurationError("no PII key ring: these settings were not resolved by running_services")
        return self.pii_keyring


def default_home() -> Path:
    """Where embedded services keep their state when no ``--home`` is given."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sohoa"


def settings_from_env(environ: dict[str, str] | None = None, **overrides) -> Settings:
    """Build :class:`Settings` from ``SOHOA_*`` variables; explicit overrides win.

    Only entry points call this. Recognised variables: ``SOHOA_HOME``, ``SOHOA_WAREHOUSE``
    (URL), ``SOHOA_S3_ACCESS_KEY``, ``SOHOA_S3_SECRET_KEY``, ``SOHOA_SIGNER_URL``,
    ``SOHOA_SIGNER_USER``, ``SOHOA_SIGNER_PASSWORD``, ``SOHOA_SIGNER_CREDENTIAL``,
    ``SOHOA_SIGNER_PIN``, ``SOHOA_TRUST_ANCHOR``, ``SOHOA_SCHEDULER``, ``SOHOA_PII_KEYRING``,
    ``SOHOA_OCR_ENGINE`` (``library`` | ``cli``), ``SOHOA_OCR_DPI``,
    ``SOHOA_OCR_LINE_IMAGES`` (``png`` | ``pnm``), ``SOHOA_RETRY_BUDGET_S``.
    """
    env = dict(os.environ if environ is None else environ)
    home = Path(overrides.pop("home", None) or env.get("SOHOA_HOME") or default_home())

    warehouse = overrides.pop("warehouse", None)
    warehouse_url = overrides.pop("warehouse_url", None) or env.get("SOHOA_WAREHOUSE")
    if warehouse is None and warehouse_url:
        cred = {}
        if env.get("SOHOA_S3_ACCESS_KEY"):
            cred["access_key"] = env["SOHOA_S3_ACCESS_KEY"]
        if env.get("SOHOA_S3_SECRET_KEY"):
            cred["secret_key"] = env["SOHOA_S3_SECRET_KEY"]
        warehouse = WarehouseSettings.from_url(warehouse_url, **cred)

    signer = overrides.pop("signer", None)
    signer_url = overrides.pop("signer_url", None) or env.get("SOHOA_SIGNER_URL")
    if signer is None and signer_url:
        user = env.get("SOHOA_SIGNER_USER")
        password = env.get("SOHOA_SIGNER_PASSWORD")
        if not user or not password:
            raise ConfigurationError("SOHOA_SIGNER_USER and SOHOA_SIGNER_PASSWORD are required with a signer URL")
        trust = env.get("SOHOA_TRUST_ANCHOR")
        signer = SignerSettings(
            url=signer_url.rstrip("/"),
            username=user,
            password=password,
            credential_id=env.get("SOHOA_SIGNER_CREDENTIAL") or None,
            pin=env.get("SOHOA_SIGNER_PIN") or None,
            trust_anchor=Path(trust) if trust else None,
        )

    if "pii_keyring" not in overrides and env.get("SOHOA_PII_KEYRING"):
        overrides["pii_keyring"] = Path(env["SOHOA_PII_KEYRING"])

    if "ocr" not in overrides and (env.get("SOHOA_OCR_ENGINE") or env.get("SOHOA_OCR_DPI")
                                   or env.get("SOHOA_OCR_LINE_IMAGES")):  # fmt: skip
        ocr = OcrSettings()
        engine = env.get("SOHOA_OCR_ENGINE") or ocr.engine
        if engine not in ("library", "cli"):
            raise ConfigurationError(f"SOHOA_OCR_ENGINE must be library or cli, not {engine!r}")
        try:
            ocr_dpi = int(env.get("SOHOA_OCR_DPI") or ocr.ocr_dpi)
        except ValueError as exc:
            raise ConfigurationError(f"SOHOA_OCR_DPI must be a whole number of dpi: {exc}") from exc
        line_images = env.get("SOHOA_OCR_LINE_IMAGES") or "png"
        if line_images not in ("png", "pnm"):
            raise ConfigurationError(f"SOHOA_OCR_LINE_IMAGES must be png (default) or pnm, not {line_images!r}")
        overrides["ocr"] = replace(ocr, engine=engine, ocr_dpi=ocr_dpi, line_images_pnm=line_images == "pnm")

    cluster = overrides.pop("cluster", None)
    if cluster is None:
        cluster = ClusterSettings(scheduler_address=env.get("SOHOA_SCHEDULER") or None)

    if "retry_budget_s" not in overrides and env.get("SOHOA_RETRY_BUDGET_S"):
        try:
            overrides["retry_budget_s"] = float(env["SOHOA_RETRY_BUDGET_S"])
        except ValueError as exc:
            raise ConfigurationError(f"SOHOA_RETRY_BUDGET_S must be a number of seconds: {exc}") from exc
    budget = overrides.get("retry_budget_s", RETRY_BUDGET_S)
    if warehouse is not None:
        warehouse = replace(warehouse, retry_budget_s=budget)
    if signer is not None:
        signer = replace(signer, retry_budget_s=budget)
    return Settings(home=home, warehouse=warehouse, signer=signer, cluster=cluster, **overrides)
