"""Resolve the services a command needs: configured ones, or embedded ones on loopback.

With no warehouse endpoint configured, an embedded SeaweedFS starts (``pipeline.s3server``);
with no signer configured, the embedded CSC signer starts (``pipeline.signer.embedded``);
with no PII key ring configured, ``<home>/pii/keyring.json`` is used (created on first use).
All keep their state under ``settings.home`` so that later commands find the same data.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from .config import Settings


@contextlib.contextmanager
def running_services(settings: Settings, *, need_signer: bool = True) -> Iterator[Settings]:
    """Yield settings with warehouse (and signer) resolved, starting embedded ones as needed."""
    with contextlib.ExitStack() as stack:
        if not settings.home.exists():  # the embedded services' state: their user's alone
            settings.home.mkdir(parents=True, mode=0o700)
        if settings.warehouse is None:
            from .s3server import EmbeddedS3

            # two identities: the setup one (Admin) creates the bucket in start(); the service
            # one (no Admin: no bucket deletion, no lock or versioning change) is all that the
            # settings carry on, to the workers and the API
            s3 = EmbeddedS3(settings.home)
            # registered before it starts: a signal (sohoa serve) during the start still stops
            # what was spawned; stop() leaves a server it reused (not its own) alone
            stack.callback(s3.stop)
            s3.start()
            settings = settings.replace(warehouse=s3.settings)
        if need_signer and settings.signer is None:
            from .signer.embedded import EmbeddedSigner

            signer = EmbeddedSigner(settings.home / "signer")
            stack.callback(signer.stop)
            signer.start()
            settings = settings.replace(signer=signer.settings)
        if settings.pii_keyring is None:
            from .pii import KeyRing, keyring_path

            path = keyring_path(settings.home)
            KeyRing.load_or_create(path)
            settings = settings.replace(pii_keyring=path)
        from .errors import ConfigurationError, WarehouseError
        from .warehouse import Warehouse

        warehouse = Warehouse(settings.warehouse)
        try:
            warehouse.ensure_bucket()  # the bucket exists: checks its versioning and Object Lock
        except WarehouseError as exc:
            if warehouse.client.bucket_exists(warehouse.bucket):
                raise
            raise ConfigurationError(
                f"bucket {warehouse.bucket!r} does not exist and the service's S3 identity may not "
                "create it: create it with the setup identity (docker compose: the s3-setup step)"
            ) from exc
        yield settings
