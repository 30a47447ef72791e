"""The energy model (one power curve, one RAM coefficient) and the one caveat for modeled energy.

    CPU W = cpu_tdp_w x curve(utilisation %) x cores_used / vcpus
    RAM W = ram_w_per_gb x ram_gb          (ram_gb defaults to the profile's RAM x cores_used / vcpus)
    E kWh = (CPU W + RAM W) x duration_s / 3.6e6

``curve`` is the Teads power curve (:data:`TEADS_CURVE`), interpolated linearly. The RAM is
charged by the same share of the machine as the CPU (the share SCI's ``M`` uses), so a
one-thread benchmark on a four-vCPU machine carries a quarter of its RAM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, Sequence

from .._checks import non_negative, number, positive
from .profiles import HardwareProfile

__all__ = [
    "CCF_RAM_W_PER_GB",
    "MODELED_ERROR_RANGE",
    "TEADS_CURVE",
    "TEADS_RAM_W_PER_GB",
    "ModeledEnergy",
    "busy_core_watts",
    "check_curve",
    "model_energy",
    "modeled_caveat",
    "modeled_energy_kwh",
    "power_curve_factor",
]

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
#: rounded, "approx 0.38 W/GB". The default here, and what training hands CodeCarbon.
TEADS_RAM_W_PER_GB = 0.375
#: Cloud Carbon Footprint's memory coefficient, 0.000392 kWh per GB-hour = 0.392 W/GB
#: (CCF Methodology, Appendix I; ``MEMORY_COEFFICIENT`` in cloud-carbon-coefficients'
#: ccfcoef/constants.py). An alternative to pass as ``ram_w_per_gb``.
CCF_RAM_W_PER_GB = 0.392

#: The error CodeCarbon's documentation gives for its TDP model. The only published error band
#: for a TDP-based model; quoted wherever modeled energy is shown, through :func:`modeled_caveat`.
MODELED_ERROR_RANGE = "-60% to +190%"


def modeled_caveat(method: str, model: Literal["codecarbon", "teads"] = "teads") -> str | None:
    """What a reader must know about an energy figure obtained by ``method``; None if measured.

    ``model`` is the model behind a modeled figure: CodeCarbon's TDP model (training) or the
    Teads curve over a profile's TDP (SCI, estimates). ``"mixed"`` figures get the caveat too.
    """
    if method not in ("modeled", "mixed"):
        return None
    if model == "codecarbon":
        how = "modeled, not measured" if method == "modeled" else "partly modeled (see which part in the detail)"
        return f"{how}: CodeCarbon's documentation puts its TDP model's error at {MODELED_ERROR_RANGE}"
    return (
        "Modeled, not measured: CPU power = profile TDP x Teads curve(CPU utilisation) x cores used / vCPUs, "
        "RAM power = W/GB x GB. The Teads curve was fitted to RAPL measurements on a few AWS bare-metal Intel "
        "servers and is applied here to other hardware through the profile's TDP figure (for the cloud presets, "
        "Cloud Carbon Footprint's SPECpower-derived full-load watts per vCPU, not a vendor TDP); utilisation is "
        "this process's CPU time over the reserved cores, a proxy for what the hardware did. No error bar has "
        "been established for this combination, so none is claimed. For scale only: CodeCarbon's documentation "
        f"puts the error of its own TDP-based model at {MODELED_ERROR_RANGE}."
    )


def check_curve(curve: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """``curve`` as float pairs; an error unless it runs from 0 to 100 % upwards with fractions >= 0."""
    try:
        points = tuple((float(x), float(y)) for x, y in curve)
    except (TypeError, ValueError):
        raise ValueError(f"curve must be a sequence of (utilisation %, fraction of TDP) pairs, got {curve!r}") from None
    xs = [x for x, _ in points]
    if len(points) < 2 or xs[0] != 0 or xs[-1] != 100 or any(b <= a for a, b in pairwise(xs)) \
            or any(not math.isfinite(y) or y < 0 for _, y in points):
        raise ValueError(f"curve must run from 0 to 100 % in increasing order with fractions >= 0, got {curve!r}")
    return points


def power_curve_factor(cpu_utilisation_percent: float,
                       curve: Sequence[tuple[float, float]] = TEADS_CURVE) -> float:
    """The fraction of TDP drawn at a CPU utilisation (0-100 %), interpolated linearly on ``curve``.

    >>> power_curve_factor(50)
    0.75
    >>> round(power_curve_factor(30), 4)   # halfway between 10 % (0.32) and 50 % (0.75)
    0.535
    """
    util = number("cpu_utilisation_percent", cpu_utilisation_percent)
    if not 0 <= util <= 100:
        raise ValueError(f"cpu_utilisation_percent must be within [0, 100], got {cpu_utilisation_percent!r}")
    for (x0, y0), (x1, y1) in pairwise(check_curve(curve)):
        if x0 <= util <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (util - x0) / (x1 - x0)
    raise AssertionError("unreachable: the curve spans 0-100 %")


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
        cpu_kwh=cpu_w * duration / 3.6e6, ram_kwh=ram_w * duration / 3.6e6, cpu_tdp_w=profile.cpu_tdp_w,
        cpu_power_w=cpu_w, ram_power_w=ram_w, curve_factor=factor,
        cpu_utilisation_percent=float(cpu_utilisation_percent), cores_used=cores, core_share=share, ram_gb=gb,
        ram_w_per_gb=w_per_gb, duration_s=duration, profile_name=profile.name,
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


def busy_core_watts(profile: HardwareProfile) -> float:
    """The modeled power of one fully busy vCPU of ``profile`` (its CPU and RAM share), watts.

    Equal to joules per CPU-second: what ``greenkfp serve``'s modeled energy counter charges each
    CPU-second of inference, and so the per-pod power an autoscaler reads from that counter's rate.
    """
    return model_energy(profile, 100.0, 1.0, 1).total_kwh * 3.6e6

