"""Hardware profiles: what the energy model and SCI's embodied share need to know about a machine.

``hardware_profile`` means the same everywhere (training, SCI, the pipeline, the CLI): the name
of a preset in :data:`PRESETS`, optionally with ``hardware_overrides``, a dict of field values
that replace the preset's. :func:`resolve_profile` turns the two into one
:class:`HardwareProfile`; every figure carries its source, and an overridden figure says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import timedelta
from types import MappingProxyType
from typing import Any, Mapping

from .._checks import non_negative, positive, positive_int

__all__ = ["DEFAULT_PROFILE", "FIGURES", "PRESETS", "HardwareProfile", "UnknownProfileError", "resolve_profile"]

DEFAULT_PROFILE = "n2-standard-4"

#: The figures of a profile, each with a source.
FIGURES = ("cpu_tdp_w", "vcpus", "ram_gb", "embodied_kgco2eq", "lifespan_years", "host_vcpus", "hourly_price_usd")

#: Four years: the rack-server lifespan used by Cloud Carbon Footprint (``RACK_SERVER_LIFESPAN
#: = 4`` in ccfcoef/constants.py; CCF Embodied Emissions page: "same number chosen by the Teads
#: team, based on the Dell PowerEdge R740 Full Life Cycle Assessment") and by the SCI
#: specification's own example. Years of 365 days, as in the spec's 4*365*24 hours.
DEFAULT_LIFESPAN_YEARS = 4.0
_LIFESPAN_SOURCE = "4 years, CCF's rack-server lifespan (RACK_SERVER_LIFESPAN, after Teads)"
_USER = "user-given"


class UnknownProfileError(ValueError):
    """A hardware profile name that is not a preset; the message lists the presets."""


@dataclass(frozen=True)
class HardwareProfile:
    """One machine, as the energy model (CPU, RAM) and SCI's embodied share (M) see it.

    Attributes:
        name: A label, such as the machine type.
        cpu_tdp_w: The CPU power the power curves scale, for the machine's ``vcpus`` (not the
            whole host's); watts > 0. CodeCarbon gets it as ``force_cpu_power``.
        vcpus: vCPUs (hardware threads) of the machine, > 0.
        ram_gb: RAM of the machine, GB, >= 0.
        embodied_kgco2eq: ``TE``, total embodied emissions of the physical host, kgCO2eq, >= 0.
        lifespan_years: ``EL``, the host's expected lifespan, in 365-day years, > 0.
        host_vcpus: ``ToR``, the vCPUs ``embodied_kgco2eq`` is shared over (>= ``vcpus``);
            None means ``vcpus`` (a whole, dedicated machine).
        sources: Where each figure of :data:`FIGURES` comes from; a figure not listed is
            ``"user-given"``.
        hourly_price_usd: The machine's on-demand list price, US dollars per hour (what the
            quarterly report's cloud cost uses), >= 0; None when unknown.
    """

    name: str
    cpu_tdp_w: float
    vcpus: int
    ram_gb: float
    embodied_kgco2eq: float
    lifespan_years: float = DEFAULT_LIFESPAN_YEARS
    host_vcpus: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    hourly_price_usd: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        checked = {"cpu_tdp_w": positive("cpu_tdp_w", self.cpu_tdp_w), "vcpus": positive_int("vcpus", self.vcpus),
                   "ram_gb": non_negative("ram_gb", self.ram_gb),
                   "embodied_kgco2eq": non_negative("embodied_kgco2eq", self.embodied_kgco2eq),
                   "lifespan_years": positive("lifespan_years", self.lifespan_years)}
        if self.hourly_price_usd is not None:
            checked["hourly_price_usd"] = non_negative("hourly_price_usd", self.hourly_price_usd)
        host = checked["vcpus"] if self.host_vcpus is None else positive_int("host_vcpus", self.host_vcpus)
        if host < checked["vcpus"]:
            raise ValueError(f"host_vcpus must be >= vcpus ({checked['vcpus']}), got {self.host_vcpus!r}")
        if not isinstance(self.sources, Mapping):
            raise ValueError(f"sources must be a dict of figure -> source, got {self.sources!r}")
        unknown = sorted(set(self.sources) - set(FIGURES))
        if unknown:
            raise ValueError(f"sources names unknown figure(s) {', '.join(map(repr, unknown))}; "
                             f"figures: {', '.join(FIGURES)}")
        sources = {k: str(self.sources.get(k) or _USER) for k in FIGURES}
        if self.hourly_price_usd is None and not self.sources.get("hourly_price_usd"):
            sources["hourly_price_usd"] = "unknown: no price given"
        for key, value in {**checked, "host_vcpus": host, "sources": MappingProxyType(sources)}.items():
            object.__setattr__(self, key, value)

    @property
    def lifespan(self) -> timedelta:
        return timedelta(days=365 * self.lifespan_years)

    @property
    def embodied_g(self) -> float:
        return self.embodied_kgco2eq * 1000.0

    def to_dict(self) -> dict:
        """JSON-ready; ``HardwareProfile(**d)`` reads it back."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "sources": dict(self.sources)}


def _preset(name: str, cpu_tdp_w: float, vcpus: int, ram_gb: float, embodied_kgco2eq: float, host_vcpus: int,
            hourly_price_usd: float, *, shape: str, cpu: str, embodied: str, host: str, price: str) -> HardwareProfile:
    return HardwareProfile(name, cpu_tdp_w, vcpus, ram_gb, embodied_kgco2eq, host_vcpus=host_vcpus,
                           hourly_price_usd=hourly_price_usd, sources={
                               "cpu_tdp_w": cpu, "vcpus": shape, "ram_gb": shape, "embodied_kgco2eq": embodied,
                               "lifespan_years": _LIFESPAN_SOURCE, "host_vcpus": host, "hourly_price_usd": price})


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
# * lifespan: four years (DEFAULT_LIFESPAN_YEARS).
# * ram_gb, vcpus: the providers' published machine shapes.
# * hourly_price_usd: the provider's on-demand (pay-as-you-go) list price for Linux in its
#   reference US region, no sustained-use, committed-use or spot discount, no disk or network:
#   GCP's "VM instance pricing" page (us-central1, vCPU-hours plus GB-hours of the series),
#   AWS's "EC2 On-Demand Pricing" page (us-east-1), Azure's "Linux Virtual Machines Pricing"
#   page (East US). List prices change; override them with hardware_overrides
#   ({"hourly_price_usd": ...}) for a negotiated rate.
PRESETS: dict[str, HardwareProfile] = {p.name: p for p in (
    # GCP n2: Intel Cascade Lake (CCF gcp-instances: n2 -> Cascade Lake).
    # CCF GCP Cascade Lake max watts 3.6425 W/vCPU x 4 = 14.57 W.
    # CCF gcp-embodied: n2-standard-4, Cascade Lake, total 1888.46 kg; largest n2 is 128 vCPUs.
    # Price: 4 vCPU x $0.031611 + 16 GB x $0.004237 per hour = $0.194236 (N2, us-central1).
    _preset("n2-standard-4", 14.57, 4, 16, 1888.46, 128, 0.194236, shape="GCP's n2-standard-4 machine shape",
            cpu="CCF GCP Cascade Lake max 3.6425 W/vCPU x 4 (SPECpower-derived full-load power, used as TDP)",
            embodied="CCF gcp-embodied, n2-standard-4 (Cascade Lake) host total",
            host="n2-standard-128, the largest n2 (CCF's resource share)",
            price="GCP VM instance pricing, N2 on-demand us-central1: 4 x $0.031611/vCPU-h + 16 x $0.004237/GB-h"),
    # GCP e2: the host CPU is not fixed; CCF's gcp-embodied rows for e2 list four possible
    # microarchitectures (Skylake, Broadwell, Haswell, EPYC 2nd Gen), so both figures are the
    # mean over those four (an unweighted mean: the real mix is not published): CCF GCP max watts
    # (3.8985 + 3.3857 + 5.9689 + 1.5752) / 4 = 3.71 W/vCPU x 4 = 14.83 W; embodied
    # (3 x 1255.46 + 1155.46) / 4 = 1230.46 kg. Largest e2 machine type: 32 vCPUs.
    # Price: 4 vCPU x $0.021811 + 16 GB x $0.002923 per hour = $0.134012 (E2, us-central1).
    _preset("e2-standard-4", 14.83, 4, 16, 1230.46, 32, 0.134012, shape="GCP's e2-standard-4 machine shape",
            cpu="mean of CCF GCP max W/vCPU over Skylake, Broadwell, Haswell and EPYC Rome, 3.71 x 4 "
                "(the e2 host CPU varies; SPECpower-derived, used as TDP)",
            embodied="mean of CCF gcp-embodied's four e2-standard-4 rows (one per possible host CPU)",
            host="e2-standard-32, the largest e2 (CCF's resource share)",
            price="GCP VM instance pricing, E2 on-demand us-central1: 4 x $0.021811/vCPU-h + 16 x $0.002923/GB-h"),
    # AWS m5: Intel Skylake per CCF data/aws-instances.csv.
    # CCF AWS "Sky Lake" max watts 3.4375 W/vCPU x 4 = 13.75 W.
    # CCF aws-embodied: m5.xlarge total 1610.79 kg; largest m5 (m5.24xlarge / m5.metal) is 96 vCPUs.
    _preset("m5.xlarge", 13.75, 4, 16, 1610.79, 96, 0.192, shape="AWS's m5.xlarge instance shape",
            cpu="CCF AWS Skylake max 3.4375 W/vCPU x 4 (SPECpower-derived, used as TDP)",
            embodied="CCF aws-embodied, m5.xlarge host total (CCF/Teads)",
            host="m5.24xlarge, the largest m5 (CCF's resource share)",
            price="AWS EC2 On-Demand pricing, m5.xlarge Linux us-east-1: $0.192/h"),
    # AWS c5: Cascade Lake or Skylake per CCF aws-instances.csv, so the mean of CCF AWS max
    # watts (3.6786 + 3.4375) / 2 = 3.558 W/vCPU x 8 = 28.46 W.
    # CCF aws-embodied: c5.2xlarge total 1344.29 kg; largest c5 (c5.24xlarge / c5.metal) is 96 vCPUs.
    _preset("c5.2xlarge", 28.46, 8, 16, 1344.29, 96, 0.34, shape="AWS's c5.2xlarge instance shape",
            cpu="mean of CCF AWS max W/vCPU for Cascade Lake and Skylake, 3.558 x 8 (SPECpower-derived, used as TDP)",
            embodied="CCF aws-embodied, c5.2xlarge host total (CCF/Teads)",
            host="c5.24xlarge, the largest c5 (CCF's resource share)",
            price="AWS EC2 On-Demand pricing, c5.2xlarge Linux us-east-1: $0.34/h"),
    # Azure Dsv5: Intel Ice Lake (per Azure's Dsv5 documentation), a microarchitecture the CCF
    # coefficient CSVs do not cover, so the CPU figure is CCF's Azure average max watts for an
    # unknown microarchitecture, 3.76 W/vCPU (Methodology, Appendix I) x 4 = 15.04 W.
    # Embodied: CCF VirtualMachineTypes.ts 'D4s v5': [4, 16, 1.5104] -> 1510.4 kg; the family's
    # largest size, D96s v5, has 96 vCPUs.
    _preset("Standard_D4s_v5", 15.04, 4, 16, 1510.4, 96, 0.192, shape="Azure's Standard_D4s_v5 size",
            cpu="CCF's Azure average max 3.76 W/vCPU x 4 (no CCF coefficient for Ice Lake; SPECpower-derived, "
                "used as TDP)",
            embodied="CCF VirtualMachineTypes.ts, 'D4s v5' host total",
            host="D96s v5, the largest Dsv5 (CCF's resource share)",
            price="Azure Linux Virtual Machines pricing, D4s v5 pay-as-you-go East US: $0.192/h"),
)}

_OVERRIDABLE = tuple(f.name for f in fields(HardwareProfile))


def resolve_profile(name: str | HardwareProfile = DEFAULT_PROFILE,
                    overrides: Mapping[str, Any] | None = None) -> HardwareProfile:
    """The profile named ``name`` (a preset, or a profile already built), with ``overrides``.

    ``overrides`` maps fields of :class:`HardwareProfile` to new values (``sources`` to the
    sources of the new figures); each overridden figure's source becomes ``"hardware_overrides"``
    unless given, and the name says which figures were overridden. The same name and overrides
    always give an equal profile, whichever step resolves them.

    Raises:
        UnknownProfileError: ``name`` is not a preset (the message lists them).
        ValueError: an override key is not a field, or a value is invalid (the message names
            the field and the value).
    """
    if isinstance(name, HardwareProfile):
        base = name
    elif isinstance(name, str) and name in PRESETS:
        base = PRESETS[name]
    else:
        raise UnknownProfileError(f"unknown hardware profile {name!r}; presets: {', '.join(PRESETS)} "
                                  f"(change figures with hardware_overrides, e.g. {{'cpu_tdp_w': 65}})")
    if not overrides:
        return base
    if not isinstance(overrides, Mapping):
        raise ValueError(f"hardware_overrides must be a dict of field -> value, got {overrides!r}")
    unknown = sorted(str(k) for k in overrides if k not in _OVERRIDABLE)
    if unknown:
        raise ValueError(f"hardware_overrides: unknown field(s) {', '.join(map(repr, unknown))}; "
                         f"fields: {', '.join(_OVERRIDABLE)}")
    changed = sorted(k for k in overrides if k in FIGURES)
    given_sources = overrides.get("sources") or {}
    if not isinstance(given_sources, Mapping):
        raise ValueError(f"hardware_overrides: sources must be a dict of figure -> source, got {given_sources!r}")
    sources = {**base.sources, **{k: "hardware_overrides" for k in changed}, **given_sources}
    label = overrides.get("name") or (f"{base.name} (overrides: {', '.join(changed)})" if changed else base.name)
    values = {**base.to_dict(), **overrides, "name": label, "sources": sources}
    return HardwareProfile(**values)
