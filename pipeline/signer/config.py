"""Configuration of the signing service (cấu hình dịch vụ ký), passed in by its entry point."""

from __future__ import annotations

from dataclasses import dataclass

from .keystore import DEFAULT_CRL_BASE_URL, DEFAULT_UNITS, UnitSpec


@dataclass(frozen=True)
class ServiceConfig:
    """Lifetimes and limits of the CSC service; ``units``/``crl_base_url`` apply when a state
    directory is created (later starts reuse what is on disk)."""

    name: str = "sohoa CSC signer"
    token_ttl_s: float = 3600.0  # access token lifetime (auth/login)
    sad_ttl_s: float = 60.0  # SAD lifetime (credentials/authorize): short on purpose
    multisign: int = 100  # most hashes one authorisation / signHash may carry
    max_pin_failures: int = 10  # consecutive wrong PINs before a credential locks (until restart)
    units: tuple[UnitSpec, ...] = DEFAULT_UNITS
    crl_base_url: str = DEFAULT_CRL_BASE_URL  # where certificates say CRLs are published
    lang: str = "vi-VN"
