"""Dask worker runtime for sohoa: the worker plugin and the ``--preload`` module."""
