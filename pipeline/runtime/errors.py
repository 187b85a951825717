"""Typed errors of the pipeline, and the one place where they map to exit codes.

Every stage raises a subclass of :class:`SohoaError`. The orchestrator catches them per
document and turns them into an :class:`pipeline.stages.models.ErrorItem` on a ``failed`` record,
so one bad scan never stops a batch. ``transient`` errors (warehouse or signer briefly
unavailable, a worker lost) are retried with backoff before they are recorded.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of the ``sohoa`` command (cf. OCRmyPDF's ``ExitCode``)."""

    ok = 0
    bad_args = 1
    input_file = 2
    missing_dependency = 3
    some_documents_failed = 4
    some_documents_need_review = 5
    verification_failed = 6
    service_unavailable = 7
    ctrl_c = 130
    other_error = 15


class SohoaError(Exception):
    """Base of all pipeline errors.

    ``stage`` names the pipeline stage, ``code`` is a short machine-readable reason, and
    ``page`` the 1-based page number when the error concerns one page.
    """

    stage: str = "pipeline"
    code: str = "error"
    transient: bool = False
    exit_code: ExitCode = ExitCode.other_error

    def __init__(self, message: str, *, page: int | None = None, stage: str | None = None):
        super().__init__(message)
        self.message = message
        self.page = page
        if stage is not None:
            self.stage = stage

    def __str__(self) -> str:  # pragma: no cover - trivial
        where = f" (page {self.page})" if self.page else ""
        return f"[{self.stage}/{self.code}]{where} {self.message}"

    def __reduce__(self):
        # Keep the instance attributes when the error crosses a process boundary (Dask).
        return (_rebuild_error, (type(self), self.message, self.page, self.stage))


def _rebuild_error(cls, message, page, stage):
    return cls(message, page=page, stage=stage)


# --- input (load stage) ---------------------------------------------------------------


class InputError(SohoaError):
    """The source file cannot be read as a scan. Permanent: re-running will not help."""

    stage = "load"
    code = "bad_input"
    exit_code = ExitCode.input_file


class EmptyFileError(InputError):
    code = "empty_file"


class UnsupportedFormatError(InputError):
    code = "unsupported_format"


class CorruptDocumentError(InputError):
    code = "corrupt_document"


class EncryptedDocumentError(InputError):
    code = "encrypted_document"


class TooManyPagesError(InputError):
    code = "too_many_pages"


class TooLargeError(InputError):
    code = "too_large"


class DecompressionBombError(InputError):
    code = "decompression_bomb"


class NoPagesError(InputError):
    code = "no_pages"


# --- processing stages -----------------------------------------------------------------


class ImageProcessingError(SohoaError):
    stage = "deskew"
    code = "image_processing"


class OcrError(SohoaError):
    stage = "ocr"
    code = "ocr_failed"


class OcrTimeoutError(OcrError):
    code = "ocr_timeout"


class ExtractionError(SohoaError):
    stage = "extract"
    code = "extraction_failed"


class SchemaValidationError(SohoaError):
    stage = "validate"
    code = "schema_invalid"


# --- services -------------------------------------------------------------------------


class ServiceUnavailableError(SohoaError):
    """A remote service (S3, signer, scheduler) did not answer. Retried with backoff."""

    transient = True
    code = "service_unavailable"
    exit_code = ExitCode.service_unavailable


class WarehouseUnavailableError(ServiceUnavailableError):
    stage = "store"
    code = "warehouse_unavailable"


class SignerUnavailableError(ServiceUnavailableError):
    stage = "sign"
    code = "signer_unavailable"


class WarehouseError(SohoaError):
    stage = "store"
    code = "warehouse_error"


class SigningError(SohoaError):
    """The signer answered but refused (wrong token, hash not authorised, expired SAD...)."""

    stage = "sign"
    code = "signing_refused"


class VerificationError(SohoaError):
    stage = "verify"
    code = "verification_failed"
    exit_code = ExitCode.verification_failed


class ConfigurationError(SohoaError):
    stage = "config"
    code = "bad_configuration"
    exit_code = ExitCode.bad_args


class DocumentNotFoundError(SohoaError):
    """The document id a command names is not in the warehouse (or is no document id)."""

    stage = "store"
    code = "document_not_found"
    exit_code = ExitCode.bad_args


class PortInUseError(ConfigurationError):
    """The address a service is told to listen on is taken (or cannot be bound)."""

    code = "port_in_use"


class MissingDependencyError(SohoaError):
    stage = "config"
    code = "missing_dependency"
    exit_code = ExitCode.missing_dependency


def exit_code_for(exc: BaseException) -> ExitCode:
    """The single mapping from an exception to the process exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.ctrl_c
    if isinstance(exc, SohoaError):
        return exc.exit_code
    return ExitCode.other_error
