"""sohoa — số hóa: turn scanned Vietnamese administrative records into signed, reusable data.

Stages (one module each): ``load`` → ``deskew`` → ``cleanup`` → ``ocr`` → ``quality`` →
``extract`` → ``validate`` → ``sign`` → ``store`` (``warehouse``), orchestrated on Dask by
``orchestrate``. Configuration is built once at the edge (``config``) and passed down.
"""

__version__ = "0.1.0"
