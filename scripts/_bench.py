"""Helpers shared by the benchmark scripts in this folder (``bench_*.py``).

Thread pinning, machine description (CPU model and flags, load average, thread pools), the rich
console they print to and the ``--json`` figures file. Imported as ``from _bench import ...``,
which works because a script's own folder is on ``sys.path`` when it runs as
``python scripts/bench_x.py``.

Only the standard library is imported at module level: numpy must not be loaded before
``pin_threads`` has set the thread counts, and rich and threadpoolctl are imported where used.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

# BLAS / OpenMP thread-count variables, pinned by ``pin_threads``.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

# CPU flags that matter for the int8 / fp16 kernels, as reported by ``cpu_flags``.
_FLAGS = {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "f16c", "fma"}


class BenchError(RuntimeError):
    """The benchmark could not produce valid figures."""


# --- threads -----------------------------------------------------------------------------------
def pin_threads(threads: int) -> None:
    """Set the thread-count variables; must run before numpy (and its BLAS) is imported."""
    if "numpy" in sys.modules:
        raise BenchError("numpy was imported before the thread counts were pinned")
    for name in THREAD_ENV:
        os.environ[name] = str(threads)


def thread_env() -> dict[str, str | None]:
    """The thread-count variables as they are set now."""
    return {name: os.environ.get(name) for name in THREAD_ENV}


def threadpools() -> list[dict]:
    """The loaded BLAS / OpenMP pools (threadpoolctl) with their thread counts."""
    from threadpoolctl import threadpool_info

    return [{"api": p.get("internal_api"), "num_threads": p.get("num_threads")} for p in threadpool_info()]


# --- machine -----------------------------------------------------------------------------------
def _cpuinfo_field(prefix: str) -> str | None:
    """The value of the first ``/proc/cpuinfo`` line starting with ``prefix`` (None: no such line)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1]
    except OSError:
        pass
    return None


def cpu_model() -> str:
    model = _cpuinfo_field("model name")
    return model.strip() if model is not None else platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The CPU's SIMD flags relevant to the inference kernels, sorted (empty when unknown)."""
    flags = _cpuinfo_field("flags")
    return [] if flags is None else sorted(set(flags.split()) & _FLAGS)


def load_average(ndigits: int | None = None) -> list[float] | None:
    """The 1, 5 and 15 minute load averages (rounded to ``ndigits`` if given), None when unavailable."""
    try:
        loads = os.getloadavg()
    except (AttributeError, OSError):  # no getloadavg on this platform, or it failed
        return None
    return list(loads) if ndigits is None else [round(x, ndigits) for x in loads]


# --- output ------------------------------------------------------------------------------------
def wide_console(min_width: int):
    """A rich console for stdout; when piped or in CI, at least ``min_width`` columns (rich would
    assume 80 and squeeze the tables)."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, min_width))
    return console


def print_error(label: str, exc: BaseException) -> None:
    """``label: exc`` in bold red on stderr."""
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]{label}[/]: {exc}")


def check_json_path(value, option: str = "--json") -> Path:
    """``value`` as the path a ``--json`` file can be written to, checked when the options are
    parsed (not after a run of minutes): not a folder, no file where a folder must be. Missing
    folders are created when the figures are written (and the message says so).

    Raises:
        UsageError: one line naming the option and the path.
    """
    path = Path(value)
    if str(value).strip() == "":
        raise UsageError(f"{option} needs a file path, got {str(value)!r}")
    if path.is_dir():
        raise UsageError(f"{option} {str(value)!r} is a folder; give a file path, such as {path / 'figures.json'}")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UsageError(f"{option} {str(value)!r}: {parent} is a file, not a folder")
            break
    return path


def json_path(value: str) -> Path:
    """An argparse ``type`` for ``--json``: :func:`check_json_path` as an argparse error."""
    import argparse

    try:
        return check_json_path(value)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--json ")) from None


def add_json_option(parser, text: str = "also write every figure as JSON to PATH") -> None:
    """The ``--json PATH`` option whose file ``write_figures`` writes; ``text`` is its help."""
    parser.add_argument("--json", type=json_path, metavar="PATH", help=text)


def make_json_folder(path: Path) -> str:
    """Create ``path``'s missing folders; a note naming the first one created ("" when none)."""
    missing = next((p for p in reversed(path.parents) if not p.exists()), None)
    path.parent.mkdir(parents=True, exist_ok=True)
    return "" if missing is None else f" (folder {missing} created)"


def write_figures(path: Path | None, report: dict, console, default=None) -> None:
    """Write ``report`` as indented JSON to ``path`` (the ``--json`` option) and say so; nothing
    when ``path`` is None. ``default`` as for ``json.dumps``."""
    if path:
        created = make_json_folder(path)
        path.write_text(json.dumps(report, indent=2, default=default) + "\n", encoding="utf-8")
        console.print(f"Figures written to {path}{created}")


def failure_line(exc: BaseException, limit: int = 400) -> str:
    """``exc``'s message as one line: a message carrying a log's tail (a server's traceback) keeps
    its first line and the log's last line (the error itself), not the flattened frames."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head = lines[0].split("Traceback (most recent call last):")[0].rstrip(" :")
    text = head if len(lines) == 1 else f"{head} ... {lines[-1]}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def fmt(value, spec: str) -> str:
    """``value`` formatted with ``spec``, or "-" when it is None."""
    return "-" if value is None else f"{value:{spec}}"


class UsageError(ValueError):
    """A bad option of a script: one line naming it and the value."""


def parse_number(value, option: str, lowest: float, highest: float, whole: bool = False):
    """``value`` of ``option`` as a number from ``lowest`` to ``highest`` (an int when ``whole``);
    plain ASCII decimals only (``float`` would take ``1_000`` and ``nan``).

    Raises:
        UsageError: ``--rate must be a number from 1 to 5000, got 'x'``.
    """
    try:
        number = float(value) if str(value).strip().isascii() and "_" not in str(value) else math.nan
    except (TypeError, ValueError):  # None, a list, an object: not a number
        number = math.nan
    if not math.isfinite(number) or not lowest <= number <= highest or (whole and number != int(number)):
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"{option} must be {kind} from {lowest:g} to {highest:g}, got {value!r}")
    return int(number) if whole else number


def stop_process_group(process: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """Stop a server started in its own process group (``start_new_session=True``): SIGTERM to
    the group, then SIGKILL when it has not ended within ``timeout_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
