"""Energy meters: RAPL and NVML counters where the machine exposes them, else the model.

:class:`RaplReader` reads Linux RAPL counters under ``/sys/class/powercap`` (package domains,
and DRAM domains where present), handling the counter's wraparound. :class:`NvmlReader` reads
NVIDIA GPU energy counters through ``pynvml`` when NVML initialises. Since Linux 5.10
(CVE-2020-8694) ``energy_uj`` is readable by root only on most distributions, and cloud VMs
rarely expose RAPL at all: the reader then reports itself unavailable and the meter models
instead (:mod:`.model`).

:class:`EnergyMeter` brackets a block of work and returns an :class:`EnergyReading` that
records, per part (CPU, RAM, GPU), whether the figure was measured or modeled, and how.
CodeCarbon's tracker, the meter training uses, is in :mod:`.codecarbon`.

No kfp import; ``pynvml`` only when an :class:`NvmlReader` is asked.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal, Mapping, Sequence

from .._checks import iso, non_negative, positive
from .model import TEADS_CURVE, TEADS_RAM_W_PER_GB, ModeledEnergy, check_curve, model_energy, modeled_caveat
from .profiles import HardwareProfile, resolve_profile

__all__ = ["EnergyMeter", "EnergyReading", "NvmlReader", "RaplError", "RaplReader"]


# --------------------------------------------------------------------------- RAPL


class RaplError(RuntimeError):
    """The RAPL counters could not be read, or went backwards without a known range."""


@dataclass(frozen=True)
class RaplDomain:
    """One RAPL zone: ``kind`` is ``"package"`` or ``"dram"``."""

    path: Path
    name: str
    kind: str

    @property
    def key(self) -> str:
        return self.path.name


_ZONE = re.compile(r"^intel-rapl:\d+(:\d+)?$")


class RaplReader:
    """Energy counters of the CPU packages (and DRAM) from Linux RAPL under ``root``.

    ``snapshot()`` reads every domain's ``energy_uj``; :meth:`energy_kwh` turns two snapshots
    into kWh per kind (``"package"``, ``"dram"``). A counter that went down between the
    snapshots wrapped at ``max_energy_range_uj``: one wrap per interval is assumed, so take
    snapshots more often than the wrap period (about ``max_energy_range_uj`` / package power:
    some 45 minutes for a 262 J-range counter at 100 W).

    Zones named ``package-N`` are the packages; ``dram`` zones are read when ``include_dram``.
    ``core``/``uncore`` zones (inside the package figure) and ``psys`` (the whole platform,
    overlapping the packages) are skipped so nothing is counted twice.
    """

    def __init__(self, root: str | os.PathLike = "/sys/class/powercap", *, include_dram: bool = True):
        self.root = Path(root)
        self.include_dram = bool(include_dram)

    def domains(self) -> list[RaplDomain]:
        """The package (and DRAM) zones found under ``root``; empty when there is no RAPL."""
        found: dict[str, RaplDomain] = {}
        try:
            candidates = [p for p in self.root.iterdir() if _ZONE.match(p.name)]
        except OSError:
            return []
        # sub-zones appear both at the top level (symlinks) and inside their package's folder
        for top in list(candidates):
            try:
                candidates += [p for p in top.iterdir() if _ZONE.match(p.name)]
            except OSError:
                pass
        for path in sorted(candidates, key=lambda p: p.name):
            try:
                name = (path / "name").read_text().strip()
            except OSError:
                continue
            kind = "package" if name.startswith("package") else "dram" if name == "dram" else None
            if kind is None or (kind == "dram" and not self.include_dram):
                continue
            try:
                real = str(path.resolve())
            except OSError:
                real = str(path)
            found.setdefault(real, RaplDomain(path=path, name=name, kind=kind))
        return sorted(found.values(), key=lambda d: d.key)

    def available(self) -> bool:
        """True when at least one package zone exists and every zone's counter can be read."""
        domains = self.domains()
        if not any(d.kind == "package" for d in domains):
            return False
        try:
            self.snapshot(domains)
        except RaplError:
            return False
        return True

    def snapshot(self, domains: Sequence[RaplDomain] | None = None) -> dict[str, int]:
        """``{zone: energy_uj}`` for every domain now.

        Raises:
            RaplError: a counter cannot be read (missing, permission denied, not a number).
        """
        out = {}
        for domain in self.domains() if domains is None else domains:
            out[domain.key] = self._read_int(domain.path / "energy_uj")
        if not out:
            raise RaplError(f"no RAPL package zone under {self.root}")
        return out

    def energy_kwh(self, before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, float]:
        """kWh per kind (``"package"``, ``"dram"``) between two snapshots, wraparound handled.

        Raises:
            RaplError: the snapshots cover different zones, or a counter went down and its
                ``max_energy_range_uj`` cannot be read.
        """
        if set(before) != set(after):
            raise RaplError(f"the snapshots cover different RAPL zones: {sorted(before)} vs {sorted(after)}")
        kinds = {d.key: d for d in self.domains()}
        totals: dict[str, float] = {}
        for key in sorted(before):
            start, end = int(before[key]), int(after[key])
            domain = kinds.get(key)
            if domain is None:
                raise RaplError(f"RAPL zone {key} disappeared from {self.root}")
            if end >= start:
                delta_uj = end - start
            else:
                max_range = self._read_int(domain.path / "max_energy_range_uj")
                if max_range <= 0 or start > max_range:
                    raise RaplError(f"RAPL zone {key} went from {start} to {end} uJ with max range {max_range}")
                delta_uj = (max_range - start) + end
            totals[domain.kind] = totals.get(domain.kind, 0.0) + delta_uj / 3.6e12  # uJ -> kWh
        return totals

    def names(self) -> list[str]:
        return [d.name for d in self.domains()]

    @staticmethod
    def _read_int(path: Path) -> int:
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise RaplError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
        try:
            return int(text)
        except ValueError:
            raise RaplError(f"{path} does not hold an integer: {text!r}") from None


# --------------------------------------------------------------------------- NVML


class NvmlReader:
    """Total energy of NVIDIA GPUs from NVML's counters (Volta and later), through ``pynvml``.

    Used only if ``pynvml`` imports and ``nvmlInit()`` succeeds; otherwise :meth:`available`
    is False and the reason is in :attr:`reason`.
    """

    def __init__(self):
        self.reason: str | None = None
        self._nvml = None
        self._handles: list = []
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            for handle in self._handles:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            self._nvml = pynvml
            if not self._handles:
                self.reason = "NVML found no GPU"
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, NotSupported ...
            self.reason = f"NVML unavailable: {type(exc).__name__}: {exc}"
            self._nvml = None
            self._handles = []

    def available(self) -> bool:
        return self._nvml is not None and bool(self._handles)

    def snapshot(self) -> list[int]:
        """Energy counters of every GPU, millijoules."""
        if not self.available():
            raise RuntimeError(self.reason or "NVML unavailable")
        return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]

    @staticmethod
    def energy_kwh(before: Sequence[int], after: Sequence[int]) -> float:
        return sum(max(0, int(b) - int(a)) for a, b in zip(before, after, strict=True)) / 3.6e9  # mJ -> kWh


# --------------------------------------------------------------------------- the meter


@dataclass(frozen=True)
class EnergyReading:
    """The energy of one metered block, its parts, and how each part was obtained.

    ``method`` is ``"measured"`` when every part was read from counters, ``"modeled"`` when
    every part was modeled, ``"mixed"`` otherwise; ``parts`` says which is which. Energies in
    kWh, times in seconds, utilisation in percent of the reserved cores.
    """

    energy_kwh: float
    method: str
    parts: tuple[dict, ...]
    duration_s: float
    cpu_time_s: float
    cpu_utilisation_percent: float
    cores_used: float
    profile: dict
    started_at: datetime
    ended_at: datetime
    notes: tuple[str, ...] = ()

    @property
    def uncertainty(self) -> str | None:
        return modeled_caveat(self.method)

    @property
    def detail(self) -> str:
        return "; ".join(f"{p['part']}: {p['detail']}" for p in self.parts)

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["parts"] = [dict(p) for p in self.parts]
        data["profile"] = dict(self.profile)
        data["started_at"] = iso(self.started_at)
        data["ended_at"] = iso(self.ended_at)
        data["notes"] = list(self.notes)
        data["detail"] = self.detail
        data["uncertainty"] = self.uncertainty
        data["units"] = {"energy": "kWh", "duration": "s", "cpu_time": "s", "cpu_utilisation": "% of reserved cores"}
        return data


MeterMode = Literal["auto", "measured", "modeled"]


class EnergyMeter:
    """Meter a block of work: RAPL-measured where the machine exposes it, else modeled.

    ``with EnergyMeter(profile, cores_used=1) as meter: work()``, then ``meter.result``; or
    call :meth:`start` and :meth:`stop` (as the benchmark does around its measured phase).

    Args:
        profile: The machine or a preset name (for the model, and for RAM when RAPL has no DRAM zone).
        cores_used: vCPUs reserved by the work; the CPU utilisation is ``cpu_timer``'s time
            over ``wall time x cores_used``.
        mode: ``"auto"`` (RAPL if available, else model), ``"measured"`` (RAPL or an error),
            ``"modeled"`` (always model).
        rapl: The RAPL reader (default: ``/sys/class/powercap``).
        include_gpu: Also read NVIDIA GPU energy counters through NVML when available.
        nvml: The NVML reader (default: a new :class:`NvmlReader` when ``include_gpu``).
        measured_share: The share of the RAPL-measured package (and DRAM) energy charged to the
            work. Default ``cores_used / logical CPUs of this machine``: the counters cover
            every core, including other processes' and idle ones, and SCI charges the share of
            the hardware reserved. Pass 1.0 for a machine dedicated to the work.
        ram_w_per_gb, curve: The model's coefficients (see :func:`model_energy`).
        timer: Wall clock, seconds (for tests).
        cpu_timer: CPU clock, seconds: the process's by default; the benchmark passes the
            calling thread's when the session is single-threaded (see ``cpu_clock_for``).
    """

    def __init__(
        self,
        profile: HardwareProfile | str,
        *,
        cores_used: float = 1,
        mode: MeterMode = "auto",
        rapl: RaplReader | None = None,
        include_gpu: bool = False,
        nvml: NvmlReader | None = None,
        measured_share: float | None = None,
        ram_w_per_gb: float = TEADS_RAM_W_PER_GB,
        curve: Sequence[tuple[float, float]] = TEADS_CURVE,
        timer: Callable[[], float] = time.perf_counter,
        cpu_timer: Callable[[], float] = time.process_time,
    ):
        self.profile = resolve_profile(profile)
        self.cores_used = positive("cores_used", cores_used)
        if self.cores_used > self.profile.vcpus:
            raise ValueError(f"cores_used must be <= the profile's vcpus ({self.profile.vcpus}), got {cores_used!r}")
        if mode not in ("auto", "measured", "modeled"):
            raise ValueError(f"mode must be 'auto', 'measured' or 'modeled', got {mode!r}")
        self.mode = mode
        self.rapl = rapl if rapl is not None else RaplReader()
        self.include_gpu = bool(include_gpu)
        self.nvml = nvml if nvml is not None or not self.include_gpu else NvmlReader()
        if measured_share is None:
            self.measured_share = min(1.0, self.cores_used / (os.cpu_count() or 1))
            self._share_basis = f"cores used {self.cores_used:g} / {os.cpu_count() or 1} logical CPUs of this machine"
        else:
            share = positive("measured_share", measured_share)
            if share > 1:
                raise ValueError(f"measured_share must be within (0, 1], got {measured_share!r}")
            self.measured_share = share
            self._share_basis = "given"
        self.ram_w_per_gb = non_negative("ram_w_per_gb", ram_w_per_gb)
        self.curve = check_curve(curve)
        self._timer = timer
        self._cpu_timer = cpu_timer
        self._start: tuple | None = None
        self.result: EnergyReading | None = None

    def start(self) -> None:
        notes: list[str] = []
        use_rapl = False
        if self.mode != "modeled":
            use_rapl = self.rapl.available()
            if not use_rapl:
                reason = f"RAPL unavailable under {self.rapl.root} (absent, unreadable or no package zone)"
                if self.mode == "measured":
                    raise RaplError(f"mode='measured' but {reason}")
                notes.append(f"{reason}: energy modeled")
        domains = self.rapl.domains() if use_rapl else []
        rapl_before = self.rapl.snapshot(domains) if use_rapl else None
        gpu_before = None
        if self.include_gpu:
            if self.nvml is not None and self.nvml.available():
                gpu_before = self.nvml.snapshot()
            else:
                notes.append(f"no GPU energy: {getattr(self.nvml, 'reason', None) or 'NVML unavailable'}")
        self._start = (datetime.now(timezone.utc), self._timer(), self._cpu_timer(), rapl_before, gpu_before, notes)
        self.result = None

    def stop(self) -> EnergyReading:
        if self._start is None:
            raise RuntimeError("EnergyMeter.stop() called before start()")
        started_at, t0, c0, rapl_before, gpu_before, notes = self._start
        duration = max(0.0, self._timer() - t0)
        cpu_time = max(0.0, self._cpu_timer() - c0)
        rapl_after = self.rapl.snapshot([d for d in self.rapl.domains() if d.key in rapl_before]) \
            if rapl_before is not None else None
        gpu_after = self.nvml.snapshot() if gpu_before is not None else None
        self._start = None
        notes = list(notes)

        util = 0.0 if duration == 0 else 100.0 * cpu_time / (duration * self.cores_used)
        if util > 100:
            notes.append(f"process CPU time was {util:.1f} % of the reserved cores' capacity (threads beyond the "
                         "reserved cores ran): utilisation clamped to 100 % for the model")
        modeled = model_energy(self.profile, min(util, 100.0), duration, self.cores_used,
                               ram_w_per_gb=self.ram_w_per_gb, curve=self.curve)
        parts = self._cpu_ram_parts(modeled, rapl_before, rapl_after)
        if gpu_before is not None:
            gpu_kwh = self.nvml.energy_kwh(gpu_before, gpu_after)
            parts.append({"part": "gpu", "kwh": gpu_kwh, "method": "measured",
                          "detail": f"measured: NVML total energy counters of {len(gpu_before)} GPU(s)"})
        methods = {p["method"] for p in parts}
        method = methods.pop() if len(methods) == 1 else "mixed"
        self.result = EnergyReading(
            energy_kwh=sum(p["kwh"] for p in parts),
            method=method,
            parts=tuple(parts),
            duration_s=duration,
            cpu_time_s=cpu_time,
            cpu_utilisation_percent=util,
            cores_used=self.cores_used,
            profile=self.profile.to_dict(),
            started_at=started_at,
            ended_at=datetime.now(timezone.utc),
            notes=tuple(notes),
        )
        return self.result

    def _cpu_ram_parts(self, modeled: ModeledEnergy, rapl_before, rapl_after) -> list[dict]:
        """The CPU and RAM parts: RAPL-measured (charged by the measured share) or modeled."""
        if rapl_before is None:
            return [{"part": "cpu", "kwh": modeled.cpu_kwh, "method": "modeled", "detail": modeled.cpu_detail()},
                    {"part": "ram", "kwh": modeled.ram_kwh, "method": "modeled", "detail": modeled.ram_detail()}]
        measured = self.rapl.energy_kwh(rapl_before, rapl_after)
        share_text = f"x share {self.measured_share:.4g} ({self._share_basis})"
        package = measured.get("package", 0.0)
        parts = [{"part": "cpu", "kwh": package * self.measured_share, "method": "measured",
                  "detail": f"measured: RAPL package energy {package:.6g} kWh ({', '.join(self.rapl.names())}) "
                            f"{share_text}"}]
        if "dram" in measured:
            parts.append({"part": "ram", "kwh": measured["dram"] * self.measured_share, "method": "measured",
                          "detail": f"measured: RAPL dram energy {measured['dram']:.6g} kWh {share_text}"})
        else:
            parts.append({"part": "ram", "kwh": modeled.ram_kwh, "method": "modeled",
                          "detail": f"{modeled.ram_detail()} (no RAPL dram zone)"})
        return parts

    def __enter__(self) -> EnergyMeter:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._start is not None:
            self.stop()
