"""Configuration of the signing service (cấu hình dịch vụ ký), passed in by its entry point."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.embedded.signer.keystore import DEFAULT_PUBLIC_URL


@dataclass(frozen=True)
class ServiceConfig:
    """Lifetimes and limits of the CSC service; ``public_url`` applies when a state directory is
    created (later starts reuse what is on disk; the issuing units are in ``pki.yml``)."""

    name: str = "sohoa CSC signer"
    token_ttl_s: float = 3600.0  # access token lifetime (auth/login)
    sad_ttl_s: float = 60.0  # SAD lifetime (credentials/authorize): short on purpose
    multisign: int = 100  # most hashes one authorisation / signHash may carry
    max_pin_failures: int = 10  # consecutive wrong PINs before a user's use of a credential locks
    pin_failure_window_s: float = 86400.0  # wrong PINs further apart than this start a new count
    pin_lockout_s: float = 900.0  # first PIN lock; each further one doubles (persisted across restarts)
    max_pin_lockout_s: float = 86400.0
    max_login_failures: int = 5  # wrong passwords of one user (within the window) before logins throttle
    login_failure_window_s: float = 300.0
    login_lockout_s: float = 30.0  # first login lock; each further one doubles
    max_login_lockout_s: float = 900.0
    public_url: str = DEFAULT_PUBLIC_URL  # where certificates say CRLs and OCSP are published
    lang: str = "vi-VN"
