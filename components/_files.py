"""Atomic file writes, the one mechanism every step uses for its outputs: a reader (or the next
pipeline step) never sees a half-written file, and a failed write leaves nothing behind.

Standard library only: embedded as-is in portable component builds.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block
    succeeds, removed when it fails."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    # mkstemp makes the file 0600; an output gets the mode a plain open() would give it
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


#: A cell a spreadsheet would run as a formula (OWASP, CSV injection): one starting with one of these.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def csv_cell(value: object) -> object:
    """``value`` safe in a CSV a spreadsheet opens: a text starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a leading single quote (OWASP's CSV injection
    advice), so ``=HYPERLINK(...)`` in a team name stays text; numbers (and texts that are a
    plain decimal number, ``-5.2``, ``1e-05``) stay numeric."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = str(value)
    if text.startswith(_FORMULA_START) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeCsvWriter:
    """``csv.writer`` whose every cell goes through :func:`csv_cell`: the one way the project
    writes CSV for people to open."""

    def __init__(self, stream, **options):
        import csv

        self._writer = csv.writer(stream, **options)

    def writerow(self, row) -> None:
        self._writer.writerow([csv_cell(cell) for cell in row])

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
