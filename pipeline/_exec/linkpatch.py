"""Redirect one imported function of a shared library already loaded in this process.

A shared library calls the functions of its dependencies through its global offset table
(GOT): one pointer per imported symbol, filled in by the dynamic linker. :func:`redirect_import`
rewrites one such pointer, so that the library calls another function from then on. It is how
:func:`pipeline._exec.tesseract.line_images_as_pnm` spares Tesseract 5 a PNG round trip per text line —
an explicit opt-in (``OcrSettings.line_images_pnm``, ``SOHOA_OCR_LINE_IMAGES=pnm``), off by
default: production code does not patch another library's memory unless asked to. Nothing in
this module runs unless that setting is on (or a benchmark or test calls it).

The rewrite is refused (``False``, nothing written) unless everything checks out: a 64-bit
little-endian ELF library, exactly one GOT slot (``JUMP_SLOT`` or ``GLOB_DAT`` relocation) for
the symbol, and the slot holding the very address the caller expects — the function the
dynamic linker bound it to. Linux only (``/proc/self/maps``, ``mprotect``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import struct
from dataclasses import dataclass

#: (machine, relocation types that fill a GOT slot with a symbol's address): x86-64, AArch64
GOT_RELOCATIONS = {62: (6, 7), 183: (1025, 1026)}  # R_X86_64_GLOB_DAT/JUMP_SLOT, R_AARCH64_*
_SHT_RELA = 4


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]  # fmt: skip


@dataclass(frozen=True)
class Slot:
    """A GOT slot of ``symbol`` in the library loaded from ``path``, at ``address``."""

    path: str
    symbol: str
    address: int


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def address_of(function: ctypes._CFuncPtr) -> int:  # type: ignore[name-defined]
    """The address of a function got through ``ctypes`` (``dlsym``)."""
    return ctypes.cast(function, ctypes.c_void_p).value or 0


def loaded_library(prefix: str) -> ctypes.CDLL | None:
    """The shared library already mapped in this process whose file name starts with ``prefix``
    ("libtesseract": the one ``tesserocr``'s wheel bundles, ``libtesseract-<hash>.so.5.5.4``),
    opened again (``dlopen`` hands back the loaded one); None when none is mapped."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith((prefix + "-", prefix + ".so")):
                return ctypes.CDLL(fields[5].strip())
    return None


def got_offsets(path: str, symbol: str) -> list[int]:
    """Offsets (from the load base) of the GOT slots of ``symbol`` in the ELF file ``path``;
    empty when the file is not a 64-bit little-endian ELF of a known machine."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # ELFCLASS64, ELFDATA2LSB
        return []
    machine = struct.unpack_from("<H", data, 18)[0]
    types = GOT_RELOCATIONS.get(machine)
    if types is None:
        return []
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    offsets = []
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type != _SHT_RELA or not entsize:
            continue
        symtab = sections[link]
        strtab = sections[symtab[6]]
        for pos in range(offset, offset + size, entsize):
            r_offset, r_info, _addend = struct.unpack_from("<QQq", data, pos)
            if (r_info & 0xFFFFFFFF) not in types:
                continue
            sym = symtab[4] + (r_info >> 32) * symtab[9]
            st_name, = struct.unpack_from("<I", data, sym)
            start = strtab[4] + st_name
            if data[start : data.index(b"\0", start)].decode() == symbol:
                offsets.append(r_offset)
    return offsets


def find_slot(library: ctypes.CDLL, anchor: str, symbol: str) -> Slot | None:
    """The one GOT slot of ``symbol`` in ``library`` (located through its exported function
    ``anchor``), or None."""
    libc = _libc()
    info = _DlInfo()
    if not libc.dladdr(address_of(getattr(library, anchor)), ctypes.byref(info)) or not info.dli_fname:
        return None
    path = os.path.realpath(info.dli_fname.decode())
    try:
        offsets = got_offsets(path, symbol)
    except (OSError, struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None
    if len(offsets) != 1:
        return None
    return Slot(path=path, symbol=symbol, address=(info.dli_fbase or 0) + offsets[0])


def _protection(address: int, path: str) -> int | None:
    """The current protection of the page holding ``address``, a page mapped from the file
    ``path`` (from ``/proc/self/maps``); None when no mapping of that file holds it."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            bounds, perms = fields[:2]
            start, end = (int(x, 16) for x in bounds.split("-"))
            if start <= address < end:
                if len(fields) < 6 or os.path.realpath(fields[5].strip()) != path:
                    return None
                return ((mmap.PROT_READ if perms[0] == "r" else 0) | (mmap.PROT_WRITE if perms[1] == "w" else 0)
                        | (mmap.PROT_EXEC if perms[2] == "x" else 0))  # fmt: skip
    return None


def redirect_import(slot: Slot, expected: int, replacement: int) -> bool:
    """Point ``slot`` at ``replacement`` if it holds ``expected`` now; ``True`` when it then
    holds ``replacement`` (also when it already did)."""
    protection = _protection(slot.address, slot.path)
    if protection is None or not protection & mmap.PROT_READ or not expected or not replacement:
        return False
    pointer = ctypes.c_void_p.from_address(slot.address)
    if pointer.value == replacement:
        return True
    if pointer.value != expected:
        return False
    libc = _libc()
    page = slot.address & ~(mmap.PAGESIZE - 1)
    writable = bool(protection & mmap.PROT_WRITE)
    if not writable and libc.mprotect(page, mmap.PAGESIZE, protection | mmap.PROT_WRITE):
        return False
    try:
        pointer.value = replacement
    finally:
        if not writable:
            libc.mprotect(page, mmap.PAGESIZE, protection)
    return ctypes.c_void_p.from_address(slot.address).value == replacement
