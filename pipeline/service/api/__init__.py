"""HTTP service (``sohoa serve``): uploads from the one-stop shop (Bộ phận Một cửa), the
review desk for stewards, reuse lookups and the dashboard, in front of the same Dask
cluster, warehouse and signer as batch runs.

* :mod:`pipeline.service.api.app` — the FastAPI application (:func:`create_app`).
* :mod:`pipeline.service.api.auth` — API keys bound to a unit and a role.
* :mod:`pipeline.cli.serve` — ``sohoa serve`` and ``sohoa apikey``.
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args, **kwargs):  # noqa: D103 - lazy import keeps ``import pipeline.service.api`` light
    from pipeline.service.api.app import (
        create_app as _create_app,  # deferred: import cycle (pipeline.service.api.app imports pipeline.service.api)
    )

    return _create_app(*args, **kwargs)
