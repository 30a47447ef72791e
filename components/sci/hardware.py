"""Hardware profiles and the energy of a run: measured (RAPL, NVML) where possible, else modeled.

**Profiles.** A :class:`HardwareProfile` holds what SCI needs about a machine: the CPU power
figure for the energy model, vCPUs, RAM, the host's embodied emissions and how many vCPUs they
are shared over, and the expected lifespan, with a ``source`` text saying where each value
comes from. :data:`PRESETS` has a few common cloud machine types (sources in the comments
next to them); :meth:`HardwareProfile.from_dict` builds a user-given profile.

**Modeled energy** (:func:`model_energy`, :func:`modeled_energy_kwh`)::

    CPU W = cpu_tdp_w x curve(utilisation %) x cores_used / vcpus
    RAM W = ram_w_per_gb x ram_gb          (ram_gb defaults to the profile's RAM x cores_used / vcpus)
    E kWh = (CPU W + RAM W) x duration_s / 3.6e6

``curve`` is the Teads power curve (:data:`TEADS_CURVE`), interpolated linearly. The RAM is
charged by the same share of the machine as the CPU (the share SCI's ``M`` uses), so a
one-thread benchmark on a four-vCPU machine carries a quarter of its RAM; pass ``ram_gb`` to
charge another amount.

**Measured energy.** :class:`RaplReader` reads Linux RAPL counters under
``/sys/class/powercap`` (package domains, and DRAM domains where present), handling the
counter's wraparound. :class:`NvmlReader` reads NVIDIA GPU energy counters through ``pynvml``
when NVML initialises. Since Linux 5.10 (CVE-2020-8694) ``energy_uj`` is readable by root
only on most distributions, and cloud VMs rarely expose RAPL at all: the reader then reports
itself unavailable and the meter models instead.

**The meter.** :class:`EnergyMeter` brackets a block of work and returns an
:class:`EnergyReading` that records, per part (CPU, RAM, GPU), whether the figure was measured
or modeled, and how.

No kfp import; ``pynvml`` only when an :class:`NvmlReader` is asked.
"""

from __future__ import annotations

import math
import os
from itertools import pairwise
import re
import time
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

from .sci import _iso, _number, non_negative, positive, positive_int

__all__ = [
    "CCF_RAM_W_PER_GB",
    "DEFAULT_LIFESPAN",
    "MODELED_UNCERTAINTY",
    "PRESETS",
    "TEADS_CURVE",
    "TEADS_RAM_W_PER_GB",
    "EnergyMeter",
    "EnergyReading",
    "HardwareProfile",
    "ModeledEnergy",
    "NvmlReader",
    "RaplError",
    "RaplReader",
    "UnknownProfileError",
    "get_profile",
    "model_energy",
    "modeled_energy_kwh",
    "power_curve_factor",
    "resolve_profile",
]

# --------------------------------------------------------------------------- coefficients

#: CPU power as a fraction of TDP at 0, 10, 50 and 100 % load: the curve Teads fitted to RAPL
#: measurements on AWS bare-metal instances (B. Davy, "Estimating AWS EC2 Instances Power
#: Consumption", Teads Engineering, 2021). Source of the four points as used here: the Green
#: Software Foundation Impact Framework's ``teads-curve`` plugin (README: "the power curve
#: provided for IDLE, 10%, 50%, 100% in the Teads Curve", linear interpolation by default), and
#: the GSF eShoppen SCI case study (``Green-Software-Foundation/sci``, case-studies/eshoppen.md),
#: which uses 0.32 at 10 % and 0.12 at idle. Interpolated linearly between the points.
TEADS_CURVE: tuple[tuple[float, float], ...] = ((0.0, 0.12), (10.0, 0.32), (50.0, 0.75), (100.0, 1.02))

#: RAM power, W per GB: Teads' figure (the article above, which derives it from the DIMM
#: vendors' rule of thumb of about 3 W per 8 GB of DDR4); the GSF eShoppen case study quotes it
#: rounded, "approx 0.38 W/GB". The default here.
TEADS_RAM_W_PER_GB = 0.375
#: Cloud Carbon Footprint's memory coefficient, 0.000392 kWh per GB-hour = 0.392 W/GB
#: (CCF Methodology, Appendix I; ``MEMORY_COEFFICIENT`` in cloud-carbon-coefficients'
#: ccfcoef/constants.py). An alternative to pass as ``ram_w_per_gb``.
CCF_RAM_W_PER_GB = 0.392

#: Four years: the rack-server lifespan used by Cloud Carbon Footprint (``RACK_SERVER_LIFESPAN
#: = 4`` in ccfcoef/constants.py; CCF Embodied Emissions page: "same number chosen by the Teads
#: team, based on the Dell PowerEdge R740 Full Life Cycle Assessment") and by the SCI
#: specification's own example. Years of 365 days, as in the spec's 4*365*24 hours.
DEFAULT_LIFESPAN = timedelta(days=4 * 365)

#: What the modeled figures' error is known to be, said honestly: no error bar is claimed.
MODELED_UNCERTAINTY = (
    "Modeled, not measured: CPU power = profile TDP x Teads curve(CPU utilisation) x cores used / vCPUs, "
    "RAM power = W/GB x GB. The Teads curve was fitted to RAPL measurements on a few AWS bare-metal Intel "
    "servers and is applied here to other hardware through the profile's TDP figure (for the cloud presets, "
    "Cloud Carbon Footprint's SPECpower-derived full-load watts per vCPU, not a vendor TDP); utilisation is "
    "this process's CPU time over the reserved cores, a proxy for what the hardware did. No error bar has "
    "been established for this combination, so none is claimed. For scale only: CodeCarbon's documentation "
    "puts the error of its own TDP-based model at -60% to +190%."
)


def power_curve_factor(cpu_utilisation_percent: float,
                       curve: Sequence[tuple[float, float]] = TEADS_CURVE) -> float:
    """The fraction of TDP drawn at a CPU utilisation (0-100 %), interpolated linearly on ``curve``.

    >>> power_curve_factor(50)
    0.75
    >>> round(power_curve_factor(30), 4)   # halfway between 10 % (0.32) and 50 % (0.75)
    0.535
    """
    util = _number("cpu_utilisation_percent", cpu_utilisation_percent)
    if not 0 <= util <= 100:
        raise ValueError(f"cpu_utilisation_percent must be within [0, 100], got {cpu_utilisation_percent!r}")
    points = _check_curve(curve)
    for (x0, y0), (x1, y1) in pairwise(points):
        if x0 <= util <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (util - x0) / (x1 - x0)
    raise AssertionError("unreachable: the curve spans 0-100 %")


def _check_curve(curve: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    try:
        points = [(float(x), float(y)) for x, y in curve]
    except (TypeError, ValueError):
        raise ValueError(f"curve must be a sequence of (utilisation %, fraction of TDP) pairs, got {curve!r}") from None
    xs = [x for x, _ in points]
    if len(points) < 2 or xs[0] != 0 or xs[-1] != 100 or any(b <= a for a, b in pairwise(xs)) \
            or any(not math.isfinite(y) or y < 0 for _, y in points):
        raise ValueError(f"curve must run from 0 to 100 % in increasing order with fractions >= 0, got {curve!r}")
    return points


# --------------------------------------------------------------------------- profiles


class UnknownProfileError(ValueError):
    """A hardware profile name that is not a preset; the message lists the presets."""


@dataclass(frozen=True)
class HardwareProfile:
    """What SCI needs to know about the machine the software runs on.

    Attributes:
        name: A label, such as the machine type.
        cpu_tdp_w: The TDP the power curve scales (the curve draws 1.02 x this at 100 %
            load), for the machine's ``vcpus``, not the whole host's; watts > 0.
        vcpus: vCPUs (hardware threads) of the machine, > 0.
        ram_gb: RAM of the machine, GB, >= 0.
        embodied_kgco2eq: ``TE``, total embodied emissions of the physical host, kgCO2eq, >= 0.
        lifespan: ``EL``, the host's expected lifespan, > 0.
        source: Where the values come from.
        host_vcpus: ``ToR``, the vCPUs ``embodied_kgco2eq`` is shared over (>= ``vcpus``).
            Defaults to ``vcpus``: the profile describes a whole, dedicated machine. Cloud
            presets give the host's embodied emissions and, following Cloud Carbon Footprint,
            the vCPUs of the largest machine type of the family.
    """

    name: str
    cpu_tdp_w: float
    vcpus: int
    ram_gb: float
    embodied_kgco2eq: float
    lifespan: timedelta = DEFAULT_LIFESPAN
    source: str = "user-given"
    host_vcpus: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "cpu_tdp_w", positive("cpu_tdp_w", self.cpu_tdp_w))
        object.__setattr__(self, "vcpus", positive_int("vcpus", self.vcpus))
        object.__setattr__(self, "ram_gb", non_negative("ram_gb", self.ram_gb))
        object.__setattr__(self, "embodied_kgco2eq", non_negative("embodied_kgco2eq", self.embodied_kgco2eq))
        if not isinstance(self.lifespan, timedelta):
            raise TypeError(f"lifespan must be a datetime.timedelta, got {type(self.lifespan).__name__}: {self.lifespan!r}")
        if self.lifespan.total_seconds() <= 0:
            raise ValueError(f"lifespan must be > 0, got {self.lifespan!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise ValueError(f"source must be a non-empty string, got {self.source!r}")
        host = self.vcpus if self.host_vcpus is None else positive_int("host_vcpus", self.host_vcpus)
        if host < self.vcpus:
            raise ValueError(f"host_vcpus must be >= vcpus ({self.vcpus}), got {self.host_vcpus!r}")
        object.__setattr__(self, "host_vcpus", host)

    @property
    def embodied_g(self) -> float:
        return self.embodied_kgco2eq * 1000.0

    _KEYS = ("name", "cpu_tdp_w", "vcpus", "ram_gb", "embodied_kgco2eq", "lifespan", "lifespan_years",
             "lifespan_hours", "source", "host_vcpus")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HardwareProfile:
        """A user-given profile from a dict (such as a KFP parameter).

        Keys: ``name`` (default ``"user-given"``), ``cpu_tdp_w``, ``vcpus``, ``ram_gb``,
        ``embodied_kgco2eq`` (required), ``host_vcpus``, ``source``, and the lifespan as one of
        ``lifespan_years`` (365-day years), ``lifespan_hours`` or ``lifespan`` (a timedelta);
        four years when none is given. Unknown keys are an error that lists the valid ones.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"hardware profile must be a dict, got {type(data).__name__}: {data!r}")
        unknown = sorted(str(k) for k in data if k not in cls._KEYS)
        if unknown:
            raise ValueError(f"unknown hardware profile key(s) {', '.join(map(repr, unknown))}; "
                             f"valid keys: {', '.join(cls._KEYS)}")
        missing = [k for k in ("cpu_tdp_w", "vcpus", "ram_gb", "embodied_kgco2eq") if k not in data]
        if missing:
            raise ValueError(f"hardware profile is missing {', '.join(missing)}; given: {dict(data)!r}")
        given = [k for k in ("lifespan", "lifespan_years", "lifespan_hours") if data.get(k) is not None]
        if len(given) > 1:
            raise ValueError(f"give the lifespan once, got {', '.join(f'{k}={data[k]!r}' for k in given)}")
        lifespan = DEFAULT_LIFESPAN
        if given == ["lifespan"]:
            lifespan = data["lifespan"]
        elif given == ["lifespan_years"]:
            lifespan = timedelta(days=365 * positive("lifespan_years", data["lifespan_years"]))
        elif given == ["lifespan_hours"]:
            lifespan = timedelta(hours=positive("lifespan_hours", data["lifespan_hours"]))
        return cls(
            name=data.get("name", "user-given"),
            cpu_tdp_w=data["cpu_tdp_w"],
            vcpus=data["vcpus"],
            ram_gb=data["ram_gb"],
            embodied_kgco2eq=data["embodied_kgco2eq"],
            lifespan=lifespan,
            source=data.get("source", "user-given"),
            host_vcpus=data.get("host_vcpus"),
        )

    def to_dict(self) -> dict:
        """JSON-ready; :meth:`from_dict` reads it back."""
        return {
            "name": self.name,
            "cpu_tdp_w": self.cpu_tdp_w,
            "vcpus": self.vcpus,
            "ram_gb": self.ram_gb,
            "embodied_kgco2eq": self.embodied_kgco2eq,
            "host_vcpus": self.host_vcpus,
            "lifespan_hours": self.lifespan.total_seconds() / 3600,
            "source": self.source,
        }


# Cloud presets. Every value is an approximation from public, open datasets, not a provider
# figure (the providers do not publish per-machine power or embodied emissions):
#
# * cpu_tdp_w: Cloud Carbon Footprint's (CCF) "max watts" per vCPU for the machine's CPU
#   microarchitecture, times the machine's vCPUs. CCF derives these from SPECpower_ssj2008
#   results (whole-server wall power at 100 % load per hardware thread), so they are a
#   full-load power, not a vendor TDP; the cloud CPUs are custom parts without public TDPs.
#   With the Teads curve (1.02 x TDP at 100 %) the modeled full-load CPU power is thus 2 %
#   above CCF's. Source: cloud-carbon-footprint/cloud-carbon-coefficients, output/
#   coefficients-{aws,gcp}-use.csv (column "Max Watts"), and CCF's Methodology page,
#   Appendix I, for provider averages where the microarchitecture is unknown.
# * embodied_kgco2eq: CCF's total embodied emissions of the *host server* for the machine
#   type (Teads' method: a 1,000 kg base rack server plus memory, storage, CPU and GPU
#   additions). Source: cloud-carbon-coefficients output/coefficients-{aws,gcp}-embodied.csv
#   (column "total"); for Azure v5 sizes, which that CSV predates, cloud-carbon-footprint
#   packages/azure/src/lib/VirtualMachineTypes.ts ([vcpus, memory, embodied tCO2e]).
# * host_vcpus: CCF's "total resources" for the resource share: "the largest instance vCPUs
#   for the given family" (CCF Embodied Emissions page).
# * lifespan: four years (DEFAULT_LIFESPAN).
# * ram_gb, vcpus: the providers' published machine shapes.
PRESETS: dict[str, HardwareProfile] = {
    # GCP n2: Intel Cascade Lake (CCF gcp-instances: n2 -> Cascade Lake).
    # CCF GCP Cascade Lake max watts 3.6425 W/vCPU x 4 = 14.57 W.
    # CCF gcp-embodied: n2-standard-4, Cascade Lake, total 1888.46 kg; largest n2 is 128 vCPUs.
    "n2-standard-4": HardwareProfile(
        name="n2-standard-4", cpu_tdp_w=14.57, vcpus=4, ram_gb=16, embodied_kgco2eq=1888.46, host_vcpus=128,
        source="GCP n2-standard-4 (Intel Cascade Lake). CPU: CCF GCP Cascade Lake max 3.64 W/vCPU x 4 "
               "(SPECpower-derived, used as TDP). Embodied: CCF 1888.46 kgCO2eq per host, shared over 128 vCPUs "
               "(n2-standard-128). Lifespan 4 y (CCF/Teads). Approximations from open data, not Google figures.",
    ),
    # GCP e2: the host CPU is not fixed; CCF's gcp-embodied rows for e2 list four possible
    # microarchitectures (Skylake, Broadwell, Haswell, EPYC 2nd Gen), so both figures are the
    # mean over those four (an unweighted mean: the real mix is not published): CCF GCP max watts
    # (3.8985 + 3.3857 + 5.9689 + 1.5752) / 4 = 3.71 W/vCPU x 4 = 14.83 W; embodied
    # (3 x 1255.46 + 1155.46) / 4 = 1230.46 kg. Largest e2 machine type: 32 vCPUs.
    "e2-standard-4": HardwareProfile(
        name="e2-standard-4", cpu_tdp_w=14.83, vcpus=4, ram_gb=16, embodied_kgco2eq=1230.46, host_vcpus=32,
        source="GCP e2-standard-4 (host CPU varies: Skylake, Broadwell, Haswell or EPYC Rome). CPU: mean of CCF GCP "
               "max W/vCPU over those four, 3.71 x 4 (SPECpower-derived, used as TDP). Embodied: mean of CCF's "
               "rows, 1230.46 kgCO2eq per host, over 32 vCPUs (e2-standard-32). Lifespan 4 y. Approximations.",
    ),
    # AWS m5: Intel Skylake per CCF data/aws-instances.csv.
    # CCF AWS "Sky Lake" max watts 3.4375 W/vCPU x 4 = 13.75 W.
    # CCF aws-embodied: m5.xlarge total 1610.79 kg; largest m5 (m5.24xlarge / m5.metal) is 96 vCPUs.
    "m5.xlarge": HardwareProfile(
        name="m5.xlarge", cpu_tdp_w=13.75, vcpus=4, ram_gb=16, embodied_kgco2eq=1610.79, host_vcpus=96,
        source="AWS m5.xlarge (Intel Skylake). CPU: CCF AWS Skylake max 3.44 W/vCPU x 4 (SPECpower-derived, used "
               "as TDP). Embodied: CCF/Teads 1610.79 kgCO2eq per host, over 96 vCPUs (m5.24xlarge). Lifespan 4 y. "
               "Approximations from open data, not AWS figures.",
    ),
    # AWS c5: Cascade Lake or Skylake per CCF aws-instances.csv, so the mean of CCF AWS max
    # watts (3.6786 + 3.4375) / 2 = 3.558 W/vCPU x 8 = 28.46 W.
    # CCF aws-embodied: c5.2xlarge total 1344.29 kg; largest c5 (c5.24xlarge / c5.metal) is 96 vCPUs.
    "c5.2xlarge": HardwareProfile(
        name="c5.2xlarge", cpu_tdp_w=28.46, vcpus=8, ram_gb=16, embodied_kgco2eq=1344.29, host_vcpus=96,
        source="AWS c5.2xlarge (Intel Cascade Lake or Skylake). CPU: mean of CCF AWS max W/vCPU for the two, 3.56 x 8 "
               "(SPECpower-derived, used as TDP). Embodied: CCF/Teads 1344.29 kgCO2eq per host, over 96 vCPUs "
               "(c5.24xlarge). Lifespan 4 y. Approximations from open data, not AWS figures.",
    ),
    # Azure Dsv5: Intel Ice Lake (per Azure's Dsv5 documentation), a microarchitecture the CCF
    # coefficient CSVs do not cover, so the CPU figure is CCF's Azure average max watts for an
    # unknown microarchitecture, 3.76 W/vCPU (Methodology, Appendix I) x 4 = 15.04 W.
    # Embodied: CCF VirtualMachineTypes.ts 'D4s v5': [4, 16, 1.5104] -> 1510.4 kg; the family's
    # largest size, D96s v5, has 96 vCPUs.
    "Standard_D4s_v5": HardwareProfile(
        name="Standard_D4s_v5", cpu_tdp_w=15.04, vcpus=4, ram_gb=16, embodied_kgco2eq=1510.4, host_vcpus=96,
        source="Azure Standard_D4s_v5 (Intel Ice Lake). CPU: CCF's Azure average max 3.76 W/vCPU x 4 (no CCF "
               "coefficient for Ice Lake; SPECpower-derived, used as TDP). Embodied: CCF 1510.4 kgCO2eq per host, "
               "over 96 vCPUs (D96s v5). Lifespan 4 y. Approximations from open data, not Microsoft figures.",
    ),
}


def get_profile(name: str) -> HardwareProfile:
    """The preset named ``name``.

    Raises:
        UnknownProfileError: ``name`` is not a preset; the message lists the presets.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise UnknownProfileError(
            f"unknown hardware profile {name!r}; presets: {', '.join(PRESETS)} "
            "(or give a profile dict: cpu_tdp_w, vcpus, ram_gb, embodied_kgco2eq, lifespan_years)"
        ) from None


def resolve_profile(value: HardwareProfile | str | Mapping[str, Any]) -> HardwareProfile:
    """A profile from a :class:`HardwareProfile`, a preset name, or a user-given dict."""
    if isinstance(value, HardwareProfile):
        return value
    if isinstance(value, str):
        return get_profile(value)
    if isinstance(value, Mapping):
        return HardwareProfile.from_dict(value)
    raise TypeError(f"profile must be a HardwareProfile, a preset name or a dict, got {type(value).__name__}: {value!r}")


# --------------------------------------------------------------------------- modeled energy


@dataclass(frozen=True)
class ModeledEnergy:
    """A modeled energy figure and every input that produced it."""

    cpu_kwh: float
    ram_kwh: float
    cpu_tdp_w: float
    cpu_power_w: float
    ram_power_w: float
    curve_factor: float
    cpu_utilisation_percent: float
    cores_used: float
    core_share: float
    ram_gb: float
    ram_w_per_gb: float
    duration_s: float
    profile_name: str

    @property
    def total_kwh(self) -> float:
        return self.cpu_kwh + self.ram_kwh

    def cpu_detail(self) -> str:
        return (f"modeled: {self.cpu_power_w:.4g} W = TDP {self.cpu_tdp_w:g} W x Teads curve at "
                f"{self.cpu_utilisation_percent:.1f} % ({self.curve_factor:.4g}) x cores used / vCPUs "
                f"({self.core_share:.4g}), profile {self.profile_name!r}, over {self.duration_s:.4g} s")

    def ram_detail(self) -> str:
        return (f"modeled: {self.ram_power_w:.4g} W = {self.ram_w_per_gb:g} W/GB x {self.ram_gb:.4g} GB, "
                f"over {self.duration_s:.4g} s")


def model_energy(
    profile: HardwareProfile,
    cpu_utilisation_percent: float,
    duration_s: float,
    cores_used: float,
    *,
    ram_w_per_gb: float = TEADS_RAM_W_PER_GB,
    ram_gb: float | None = None,
    curve: Sequence[tuple[float, float]] = TEADS_CURVE,
) -> ModeledEnergy:
    """Model the energy of a run from CPU utilisation, with every input recorded.

    Args:
        profile: The machine.
        cpu_utilisation_percent: Average utilisation of the cores used, 0-100 %.
        duration_s: Wall time of the run, seconds (>= 0).
        cores_used: vCPUs reserved by the run, 0 < cores_used <= ``profile.vcpus``.
        ram_w_per_gb: RAM power per GB (default Teads' 0.375 W/GB; CCF uses 0.392).
        ram_gb: GB of RAM charged to the run; default the profile's RAM x cores_used / vcpus.
        curve: The power curve (default :data:`TEADS_CURVE`).
    """
    if not isinstance(profile, HardwareProfile):
        raise TypeError(f"profile must be a HardwareProfile, got {type(profile).__name__}: {profile!r}")
    duration = non_negative("duration_s", duration_s)
    cores = positive("cores_used", cores_used)
    if cores > profile.vcpus:
        raise ValueError(f"cores_used must be <= the profile's vcpus ({profile.vcpus}), got {cores_used!r}")
    share = cores / profile.vcpus
    w_per_gb = non_negative("ram_w_per_gb", ram_w_per_gb)
    gb = profile.ram_gb * share if ram_gb is None else non_negative("ram_gb", ram_gb)
    factor = power_curve_factor(cpu_utilisation_percent, curve)
    cpu_w = profile.cpu_tdp_w * factor * share
    ram_w = w_per_gb * gb
    return ModeledEnergy(
        cpu_kwh=cpu_w * duration / 3.6e6,
        ram_kwh=ram_w * duration / 3.6e6,
        cpu_tdp_w=profile.cpu_tdp_w,
        cpu_power_w=cpu_w,
        ram_power_w=ram_w,
        curve_factor=factor,
        cpu_utilisation_percent=float(cpu_utilisation_percent),
        cores_used=cores,
        core_share=share,
        ram_gb=gb,
        ram_w_per_gb=w_per_gb,
        duration_s=duration,
        profile_name=profile.name,
    )


def modeled_energy_kwh(
    profile: HardwareProfile,
    cpu_utilisation_percent: float,
    duration_s: float,
    cores_used: float,
    ram_w_per_gb: float = TEADS_RAM_W_PER_GB,
    *,
    ram_gb: float | None = None,
    curve: Sequence[tuple[float, float]] = TEADS_CURVE,
) -> float:
    """Modeled energy of a run, kWh: ``TDP x curve(util) x cores_used/vcpus x t + RAM W x t``.

    See :func:`model_energy` for the arguments and for a breakdown.

    >>> p = HardwareProfile("demo", cpu_tdp_w=100, vcpus=8, ram_gb=0, embodied_kgco2eq=0)
    >>> modeled_energy_kwh(p, 50, 3600, 4)   # 0.75 x 100 W x 4/8 for an hour
    0.0375
    """
    return model_energy(profile, cpu_utilisation_percent, duration_s, cores_used,
                        ram_w_per_gb=ram_w_per_gb, ram_gb=ram_gb, curve=curve).total_kwh


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
        return None if self.method == "measured" else MODELED_UNCERTAINTY

    @property
    def detail(self) -> str:
        return "; ".join(f"{p['part']}: {p['detail']}" for p in self.parts)

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["parts"] = [dict(p) for p in self.parts]
        data["profile"] = dict(self.profile)
        data["started_at"] = _iso(self.started_at)
        data["ended_at"] = _iso(self.ended_at)
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
        profile: The machine (for the model, and for RAM when RAPL has no DRAM zone).
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
        profile: HardwareProfile | str | Mapping[str, Any],
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
        self.curve = tuple(_check_curve(curve))
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
        util_model = min(util, 100.0)
        modeled = model_energy(self.profile, util_model, duration, self.cores_used,
                               ram_w_per_gb=self.ram_w_per_gb, curve=self.curve)
        parts: list[dict] = []
        if rapl_before is not None:
            measured = self.rapl.energy_kwh(rapl_before, rapl_after)
            zones = ", ".join(self.rapl.names())
            share_text = f"x share {self.measured_share:.4g} ({self._share_basis})"
            parts.append({"part": "cpu", "kwh": measured.get("package", 0.0) * self.measured_share,
                          "method": "measured",
                          "detail": f"measured: RAPL package energy {measured.get('package', 0.0):.6g} kWh "
                                    f"({zones}) {share_text}"})
            if "dram" in measured:
                parts.append({"part": "ram", "kwh": measured["dram"] * self.measured_share, "method": "measured",
                              "detail": f"measured: RAPL dram energy {measured['dram']:.6g} kWh {share_text}"})
            else:
                parts.append({"part": "ram", "kwh": modeled.ram_kwh, "method": "modeled",
                              "detail": f"{modeled.ram_detail()} (no RAPL dram zone)"})
        else:
            parts.append({"part": "cpu", "kwh": modeled.cpu_kwh, "method": "modeled", "detail": modeled.cpu_detail()})
            parts.append({"part": "ram", "kwh": modeled.ram_kwh, "method": "modeled", "detail": modeled.ram_detail()})
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

    def __enter__(self) -> EnergyMeter:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._start is not None:
            self.stop()
