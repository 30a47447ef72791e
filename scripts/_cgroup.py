"""Run a process under a CPU limit in millicores, as Kubernetes limits a pod's CPU.

A pod's ``resources.limits.cpu`` becomes a CFS bandwidth quota on its cgroup: the kubelet sets
``cpu.cfs_quota_us = millicores x 100`` with ``cpu.cfs_period_us = 100000`` (cgroup v1) or
``cpu.max = "QUOTA 100000"`` (cgroup v2). Within each 100 ms period the pod may run ``millicores``
/ 10 ms of CPU; past that its threads wait for the next period (throttling), which is what makes
a limited replica's latency climb before its CPU looks busy.

:func:`cpu_limit` creates such a cgroup (v2 when the unified hierarchy has the ``cpu`` controller,
else v1's ``cpu`` controller), yields a :class:`CpuLimit` whose :meth:`CpuLimit.wrap` prefixes a
command so that it joins the cgroup before it ``exec``s (its children are born inside), and removes
the cgroup at the end, killing anything still in it, whether the process ended, died or the
caller raised. A cgroup left behind by a caller that was SIGKILLed (``greenkfp-<pid>-*`` whose pid
is gone) is removed by the next call, after killing any process still in it. :func:`die_with_parent`
(a ``preexec_fn``) makes a child get SIGKILL when the process that started it dies, however it dies. Without a writable cpu cgroup it raises :class:`CgroupError`
(one line): callers refuse rather than run unlimited.

Needs root (or a delegated cgroup). Standard library only.

Usage as a command (a process under a limit, the cgroup removed when it ends):
    python scripts/_cgroup.py --cpu-limit-m 100 -- COMMAND [ARGS...]
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

#: The CFS period the kubelet uses (``cpu.cfs_period_us``), microseconds.
PERIOD_US = 100_000
PREFIX = "greenkfp-"
_counter = itertools.count()


class CgroupError(RuntimeError):
    """No writable cpu cgroup, or one that could not be set up (one line)."""


def _mounts() -> list[tuple[str, str, set[str]]]:
    """``(mount point, fstype, super options)`` of the cgroup mounts (/proc/self/mountinfo)."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and tail and tail[0] in ("cgroup", "cgroup2"):
            out.append((fields[4], tail[0], set(tail[-1].split(","))))
    return out


def _own_path(controller: str | None) -> str:
    """This process's cgroup path for a v1 ``controller`` (None: the v2 unified entry)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if (controller is None and names == "") or (controller is not None and controller in names.split(",")):
                return path
    except OSError:
        pass
    return "/"


def locate() -> tuple[int, Path]:
    """``(cgroup version, the folder new cgroups go in)`` of the cpu controller.

    Raises:
        CgroupError: no cpu controller mounted, or its folder is not writable.
    """
    mounts = _mounts()
    for point, kind, _ in mounts:
        if kind == "cgroup2":
            try:
                controllers = (Path(point) / "cgroup.controllers").read_text().split()
            except OSError:
                continue
            if "cpu" in controllers:
                parent = Path(point) / _own_path(None).lstrip("/")
                parent = parent if parent.is_dir() else Path(point)
                if os.access(parent, os.W_OK):
                    return 2, parent
    for point, kind, options in mounts:
        if kind == "cgroup" and "cpu" in options:
            parent = Path(point) / _own_path("cpu").lstrip("/")
            parent = parent if parent.is_dir() else Path(point)
            if os.access(parent, os.W_OK) and (parent / "cpu.cfs_quota_us").exists():
                return 1, parent
    raise CgroupError("no writable cpu cgroup (cgroup v2 with the cpu controller, or v1 cpu with CFS quota) on this "
                      "machine: a CPU limit needs root or a delegated cgroup; refusing to run unlimited")


def _members(path: Path) -> list[int]:
    try:
        return [int(x) for x in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def die_with_parent():
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGKILL when the process that
    started it dies (Linux ``prctl(PR_SET_PDEATHSIG)``; kept across ``exec``), so a SIGKILLed
    script leaves no server running. Elsewhere a no-op."""
    import ctypes

    parent = os.getpid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0 and os.getppid() != parent:  # 1: PR_SET_PDEATHSIG
            os.kill(os.getpid(), signal.SIGKILL)  # the parent died before the prctl: die now

    return preexec if sys.platform.startswith("linux") else None


def _sweep(parent: Path) -> None:
    """Remove the ``greenkfp-<pid>-*`` cgroups whose creating process is gone (SIGKILLed), killing
    what still runs in them first (a server started without :func:`die_with_parent`)."""
    for child in parent.glob(f"{PREFIX}*"):
        try:
            owner = int(child.name[len(PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
            with contextlib.suppress(CgroupError):
                CpuLimit(0, 0, child).close(timeout_s=5.0)


class CpuLimit:
    """A cgroup with a CPU quota of ``millicores`` (see :func:`cpu_limit`)."""

    def __init__(self, millicores: int, version: int, path: Path):
        self.millicores, self.version, self.path = millicores, version, path

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    def wrap(self, command: Sequence[str]) -> list[str]:
        """``command`` behind a shell that moves itself into the cgroup, then ``exec``s it (same
        pid; everything it starts is inside)."""
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs_file), *map(str, command)]

    def add(self, pid: int) -> None:
        """Move a running process (all its threads) into the cgroup (its existing children stay out)."""
        self.procs_file.write_text(str(pid))

    def pids(self) -> list[int]:
        return _members(self.path)

    def stats(self) -> dict:
        """Throttling so far (``cpu.stat``): periods, throttled periods, throttled seconds; and the
        CPU seconds used where the cgroup counts them (v2 ``usage_usec``; v1: None, cpuacct is a
        separate controller)."""
        values: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, value = line.split()
                values[key] = int(value)
        throttled = values.get("throttled_usec")
        throttled_s = throttled / 1e6 if throttled is not None else values.get("throttled_time", 0) / 1e9
        usage = values.get("usage_usec")
        return {"periods": values.get("nr_periods", 0), "throttled_periods": values.get("nr_throttled", 0),
                "throttled_s": throttled_s, "usage_cpu_s": usage / 1e6 if usage is not None else None}

    def close(self, timeout_s: float = 10.0) -> None:
        """Kill whatever is still in the cgroup and remove it."""
        deadline = time.monotonic() + timeout_s
        while self.path.exists():
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:  # EBUSY while the killed processes are being reaped
                if time.monotonic() > deadline:
                    raise CgroupError(f"could not remove the cgroup {self.path}: {exc}") from None
                time.sleep(0.05)


#: The kernel's smallest CFS quota is 1 ms (1000 us): 10 m at the 100 ms period.
MIN_MILLICORES = 1000 * 1000 // PERIOD_US


def check_millicores(millicores) -> int:
    if isinstance(millicores, bool) or not isinstance(millicores, int) or not 1 <= millicores <= 1_000_000:
        raise CgroupError(f"the CPU limit must be a whole number of millicores from {MIN_MILLICORES} to 1000000, "
                          f"got {millicores!r}")
    if millicores < MIN_MILLICORES:
        raise CgroupError(f"the CPU limit {millicores} m is below the kernel's smallest CFS quota, 1 ms per "
                          f"{PERIOD_US // 1000} ms period ({MIN_MILLICORES} m)")
    return millicores


@contextlib.contextmanager
def cpu_limit(millicores: int) -> Iterator[CpuLimit]:
    """A new cgroup limiting its processes to ``millicores`` of CPU (quota ``millicores x 100`` us
    per 100 ms period, as the kubelet sets it), removed at the end whatever happens.

    Raises:
        CgroupError: no writable cpu cgroup, or the quota could not be set.
    """
    check_millicores(millicores)
    version, parent = locate()
    _sweep(parent)
    path = parent / f"{PREFIX}{os.getpid()}-{next(_counter)}-{time.monotonic_ns() % 10**9}"
    quota = millicores * PERIOD_US // 1000
    try:
        path.mkdir()
    except OSError as exc:
        raise CgroupError(f"cannot create a cpu cgroup in {parent}: {exc.strerror}") from None
    limit = CpuLimit(millicores, version, path)
    try:
        try:
            if version == 2:
                if not (path / "cpu.max").exists():  # the parent does not delegate cpu to its children yet
                    try:
                        (parent / "cgroup.subtree_control").write_text("+cpu")
                    except OSError as exc:
                        raise CgroupError(f"cannot enable the cpu controller under {parent} ({exc.strerror}; cgroup v2 "
                                          "allows it only in a cgroup without processes of its own)") from None
                (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as exc:
            raise CgroupError(f"cannot set the CPU quota of {path}: {exc.strerror}") from None
        yield limit
    finally:
        limit.close()


def run(command: Sequence[str], millicores: int) -> int:
    """Run ``command`` under ``millicores`` and return its exit code (the cgroup removed after)."""
    with cpu_limit(millicores) as limit:
        process = subprocess.Popen(limit.wrap(command), preexec_fn=die_with_parent())
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)
            return process.wait()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 4 or argv[0] != "--cpu-limit-m" or argv[2] != "--":
        print("usage: _cgroup.py --cpu-limit-m MILLICORES -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        millicores = int(argv[1]) if argv[1].isdigit() else argv[1]
        return run(argv[3:], check_millicores(millicores))
    except CgroupError as exc:
        print(f"_cgroup.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
