"""glibc allocator settings for OCR workers.

A Dask nanny starts its worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (the
``distributed.nanny.pre-spawn-environ`` default), so that freed memory goes back to the
system at once. Setting any malloc threshold turns off glibc's dynamic mmap threshold: every
allocation over 128 KiB is then a fresh ``mmap`` whose pages fault in and are zeroed again,
and a page is made of them (an A4 page at 300 dpi is 26 MB in RGB, 8.7 MB in grey; deskew
and clean-up make a dozen such arrays). On this project's benchmark pages that doubled the
CPU time of load, deskew, clean-up and JPEG encoding in a worker (0.94 s a page instead of
0.41 s; benchmarks/throughput.py prints the stage times).

:func:`keep_page_buffers` sets the thresholds glibc's dynamic rule would reach for such
arrays: buffers up to :data:`MMAP_THRESHOLD` come from the heap and are reused, and up to
:data:`TRIM_THRESHOLD` of free heap is kept rather than returned. A worker then holds a few
page buffers more than it strictly needs, and never re-faults them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what the dynamic rule sets next to it


@functools.lru_cache(maxsize=1)
def keep_page_buffers() -> bool:
    """Set the malloc thresholds in this process (once); ``False`` where libc is not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
