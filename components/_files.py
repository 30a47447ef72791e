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


class OutputError(OSError):
    """An output that cannot be written, as one line naming the option, the path and what the
    operating system said (``--output 'out/report': /etc/hostname is a file, not a folder``)."""

    def __init__(self, option: str, value: object, reason: str):
        super().__init__(f"{option} {str(value)!r}: {reason}")
        self.option, self.value, self.reason = option, value, reason

    def __str__(self) -> str:
        return self.args[0]


def os_reason(exc: OSError) -> str:
    """What ``exc`` says happened, in words: the path it happened on (when it has one) and the
    operating system's reason (``permission denied``), never a Python repr."""
    import errno

    where = os.fspath(exc.filename) if exc.filename is not None else None
    words = {errno.ENOTDIR: "is a file, not a folder", errno.EISDIR: "is a folder, not a file",
             errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
             errno.EROFS: "is on a read-only file system", errno.ENOSPC: "no space left on the device",
             errno.EDQUOT: "disk quota exceeded", errno.ENAMETOOLONG: "the name is too long",
             errno.ELOOP: "too many symbolic links", errno.EEXIST: "exists and is not a folder"}
    reason = words.get(exc.errno) if exc.errno is not None else None
    if reason is None:
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    if exc.errno == errno.ENOTDIR and where is not None:  # the OS names the whole path: find the file in it
        for parent in (Path(where), *Path(where).parents):
            if parent.exists() and not parent.is_dir():
                where = os.fspath(parent)
                break
        else:
            reason = "a part of it is a file, not a folder"
    return f"{where}: {reason}" if where is not None else reason


def check_output_folder(option: str, folder: str | os.PathLike) -> Path:
    """``folder`` checked, without writing anything, as a folder outputs can be written into:
    named, not the file system's root, no file where a folder is expected, and the folder (or the
    nearest one that exists, for a new one) writable. Else :class:`OutputError` naming ``option``."""
    text = os.fspath(folder)
    if not text.strip():
        raise OutputError(option, text, "must name a folder (it is empty)")
    path = Path(text)
    if path.resolve() == Path(path.resolve().anchor):
        raise OutputError(option, text, "must not be the file system's root: name a folder to write into")
    for part in (path, *path.parents):  # the first one that exists must be a writable folder
        if part.exists() or part.is_symlink():
            if not part.exists():  # a dangling symlink: neither a file nor a folder
                raise OutputError(option, text, "is a symlink to a missing path" if part == path else
                                  f"{part} is a symlink to a missing path")
            if not part.is_dir():
                raise OutputError(option, text, "is a file, not a folder" if part == path else
                                  f"{part} is a file, not a folder")
            if not os.access(part, os.W_OK | os.X_OK):
                raise OutputError(option, text, f"{part}: permission denied")
            break
    return path


def _output_folder(option: str, folder: str | os.PathLike) -> Path:
    """:func:`check_output_folder`, then the folder created when missing (mode 0777 less the
    umask, as every output gets)."""
    path = check_output_folder(option, folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(option, os.fspath(folder), os_reason(exc)) from None
    return path


def write_files(folder: str | os.PathLike, files: dict[str, bytes | str], *, option: str = "--output") -> list[Path]:
    """Write ``files`` (name -> contents, text as UTF-8) into ``folder`` (created if missing) as
    one set: every target is checked, then every file is written to a temporary file beside its
    target, and only when all are written are they renamed into place. A failure leaves the
    previous files as they were and no temporary file behind; it raises :class:`OutputError`
    naming ``option``, the path and the reason. Returns the paths written, in order."""
    path = _output_folder(option, folder)
    targets = [path / name for name in files]
    for target in targets:
        if target.is_dir():
            raise OutputError(option, os.fspath(folder), f"{target} is a folder, not a file")
    existed = {target for target in targets if target.exists()}
    staged: list[tuple[Path, Path]] = []
    backups: list[tuple[Path, Path]] = []  # (a hard link to the previous file, the target)
    replaced: list[Path] = []
    mode = 0o666 & ~_umask()
    try:
        try:
            for target, data in zip(targets, files.values()):
                fd, name = tempfile.mkstemp(dir=path, prefix=f".{target.name}.", suffix=".tmp")
                staged.append((Path(name), target))
                with os.fdopen(fd, "wb") as stream:
                    stream.write(data.encode("utf-8") if isinstance(data, str) else data)
                os.chmod(name, mode)  # mkstemp makes the file 0600
            for target in targets:  # the previous files, to put back if a rename fails
                if target in existed:
                    backup = Path(tempfile.mktemp(dir=path, prefix=f".{target.name}.", suffix=".old"))
                    try:
                        os.link(target, backup)
                    except OSError:
                        continue  # a file system without hard links: no way back, but still one set
                    backups.append((backup, target))
            for tmp, target in staged:
                os.replace(tmp, target)
                replaced.append(target)
        except OSError as exc:
            kept = dict((target, backup) for backup, target in backups)
            for target in replaced:  # put the previous set back
                if target in kept:
                    os.replace(kept.pop(target), target)
                elif target not in existed:
                    target.unlink(missing_ok=True)
            raise OutputError(option, os.fspath(folder), os_reason(exc)) from None
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        for backup, _ in backups:
            backup.unlink(missing_ok=True)
    return targets


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


class FileReadError(OSError):
    """An input file refused before (or while) it is read: ``path`` and ``reason`` in words
    (``is a folder``, ``is not a regular file (a device, pipe or socket)``, ``is larger than 1 MiB``)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"{self.path}: {reason}")

    def __str__(self) -> str:
        return self.args[0]


def size_text(limit: int) -> str:
    """``limit`` bytes in words: ``1 MiB``, ``512 MiB``, ``64 KiB``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit:,} bytes"


def read_bounded(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them: a folder, a device,
    a FIFO or a socket is refused before it is opened (so ``/dev/zero`` is not read until memory
    runs out and a FIFO is not waited on), a file larger than ``limit`` too, checked again while
    reading (a growing file). Else :class:`FileReadError` naming the path and the reason."""
    import stat

    too_large = f"is larger than {size_text(limit)}"
    not_regular = "is not a regular file (a device, pipe or socket)"
    try:
        status = os.stat(path)
        if stat.S_ISDIR(status.st_mode):
            raise FileReadError(path, "is a folder, not a file")
        if not stat.S_ISREG(status.st_mode):
            raise FileReadError(path, not_regular)
        if status.st_size > limit:
            raise FileReadError(path, too_large)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
        descriptor = os.open(path, flags)  # non-blocking: a file swapped for a FIFO meanwhile does not hang
        with open(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise FileReadError(path, not_regular)
            data = handle.read(limit + 1)
    except FileReadError:
        raise
    except FileNotFoundError:
        raise FileReadError(path, "no such file" if not os.path.islink(path) else "is a symlink to a missing path") \
            from None
    except OSError as exc:
        raise FileReadError(path, f"cannot be read: {os_reason(exc).split(': ')[-1]}") from None
    if len(data) > limit:
        raise FileReadError(path, too_large)
    return data
