"""Catalog of records (danh mục): a Parquet index in the warehouse, queried with DuckDB.

See :mod:`pipeline.warehouse.catalog.index` for the layout and the concurrency model.
"""

from __future__ import annotations

from pipeline.warehouse.catalog.index import (
    Catalog,
    CatalogConflictError,
    CatalogError,
    catalog_add,
    catalog_row,
    compact,
    fold_text,
    normalize_number,
    rebuild,
)

__all__ = [
    "Catalog",
    "CatalogConflictError",
    "CatalogError",
    "catalog_add",
    "catalog_row",
    "compact",
    "fold_text",
    "normalize_number",
    "rebuild",
]
