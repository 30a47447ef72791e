"""SCI arithmetic and the SCI report record.

The Green Software Foundation's Software Carbon Intensity specification (v1.1, ISO/IEC
21031:2024; ``SPEC.md`` in the GSF repository ``Green-Software-Foundation/sci``) defines::

    SCI = (O + M) per R,   O = E x I,   M = TE x (TiR / EL) x (RR / ToR)

* ``E``: energy of the hardware the software uses, kWh;
* ``I``: location-based grid carbon intensity, gCO2eq/kWh (no market-based measures);
* ``M``: the software's share of the hardware's embodied emissions, gCO2eq: total embodied
  emissions ``TE`` times the time share (time reserved ``TiR`` over expected lifespan ``EL``)
  times the resource share (resources reserved ``RR`` over total resources ``ToR``);
* ``R``: the functional unit, for example "per 1,000 inferences".

:func:`sci_score` and :func:`embodied_share` are the two formulas; :class:`FunctionalUnit`
names ``R`` and converts between sizes of it (the spec asks that conversion factors be
disclosed); :class:`SciReport` is the record the spec's "Report" step asks for: the score, its
parts with units, the software boundary and the methodology, each energy figure labelled
measured or modeled.

Validation happens up front; an error names the argument and the bad value. Durations are
``datetime.timedelta``. Plain Python, no kfp import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

from .._checks import iso as _iso
from .._checks import non_negative, positive
from .._checks import number as _number

__all__ = [
    "ENERGY_METHODS",
    "SCHEMA",
    "UNITS",
    "FunctionalUnit",
    "SciReport",
    "embodied_share",
    "operational_emissions",
    "sci_score",
]

SCHEMA = "greenkfp.sci_report/v1"

#: How an energy figure was obtained. "mixed": some parts measured, some modeled (see the parts).
ENERGY_METHODS = ("measured", "modeled", "mixed")

UNITS = {
    "sci": "gCO2eq per functional unit",
    "energy": "kWh",
    "intensity": "gCO2eq/kWh",
    "emissions": "gCO2eq",
    "embodied_total": "gCO2eq (TE)",
    "duration": "s",
    "power": "W",
    "time": "ISO 8601, UTC",
}


# --------------------------------------------------------------------------- validation


def duration_seconds(name: str, value: Any, *, strictly_positive: bool) -> float:
    """Seconds in a ``timedelta``; an error naming ``name`` for anything else or a bad sign."""
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a datetime.timedelta, got {type(value).__name__}: {value!r}")
    seconds = value.total_seconds()
    if strictly_positive and seconds <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if seconds < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return seconds


# --------------------------------------------------------------------------- the formulas


def operational_emissions(energy_kwh: float, intensity_g_per_kwh: float) -> float:
    """``O = E x I`` in gCO2eq, for ``E`` in kWh and ``I`` in gCO2eq/kWh (both >= 0)."""
    return non_negative("energy_kwh", energy_kwh) * non_negative("intensity_g_per_kwh", intensity_g_per_kwh)


def sci_score(energy_kwh: float, intensity_g_per_kwh: float, embodied_g: float, functional_units: float) -> float:
    """The SCI score ``(E x I + M) / R``, in gCO2eq per functional unit.

    Args:
        energy_kwh: ``E``, the energy used over the period, kWh (>= 0).
        intensity_g_per_kwh: ``I``, the location-based grid intensity, gCO2eq/kWh (>= 0).
        embodied_g: ``M``, the embodied-emissions share for the same period, gCO2eq (>= 0);
            see :func:`embodied_share`.
        functional_units: ``R``, how many functional units the period delivered (> 0), for
            example 12.5 when 12,500 inferences ran and the unit is "per 1,000 inferences"
            (:meth:`FunctionalUnit.count` does that conversion).

    Returns:
        gCO2eq per functional unit.

    Raises:
        ValueError: a negative or non-finite figure, or ``functional_units <= 0``; the
            message names the argument and the value.
    """
    energy = non_negative("energy_kwh", energy_kwh)
    intensity = non_negative("intensity_g_per_kwh", intensity_g_per_kwh)
    embodied = non_negative("embodied_g", embodied_g)
    units = positive("functional_units", functional_units)
    return (energy * intensity + embodied) / units


def embodied_share(
    total_embodied_g: float,
    time_reserved: timedelta,
    expected_lifespan: timedelta,
    resources_reserved: float,
    total_resources: float,
) -> float:
    """The embodied-emissions share ``M = TE x (TiR / EL) x (RR / ToR)``, in gCO2eq.

    Args:
        total_embodied_g: ``TE``, the hardware's total embodied (manufacture and disposal)
            emissions, gCO2eq (>= 0). Note the unit: LCA figures are often in kgCO2eq.
        time_reserved: ``TiR``, how long the hardware was reserved for the software (>= 0).
        expected_lifespan: ``EL``, how long the hardware is expected to be installed (> 0).
        resources_reserved: ``RR``, resources reserved for the software, e.g. vCPUs
            (0 < RR <= ToR).
        total_resources: ``ToR``, the hardware's total resources in the same unit (> 0).

    Returns:
        gCO2eq.

    Example:
        The specification's own example: 1,000 kg embodied, a four-year lifespan, reserved for
        one hour, the whole device: ``embodied_share(1_000_000, timedelta(hours=1),
        timedelta(days=4 * 365), 1, 1)`` is 28.5 g ("around 28 g" in the spec's words).
    """
    total = non_negative("total_embodied_g", total_embodied_g)
    reserved_s = duration_seconds("time_reserved", time_reserved, strictly_positive=False)
    lifespan_s = duration_seconds("expected_lifespan", expected_lifespan, strictly_positive=True)
    total_res = positive("total_resources", total_resources)
    reserved_res = positive("resources_reserved", resources_reserved)
    if reserved_res > total_res:
        raise ValueError(
            f"resources_reserved must be <= total_resources ({total_resources!r}), got {resources_reserved!r}"
        )
    return total * (reserved_s / lifespan_s) * (reserved_res / total_res)


# --------------------------------------------------------------------------- functional unit


def _format_count(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,g}"


@dataclass(frozen=True)
class FunctionalUnit:
    """``R``: what one SCI score is "per", such as one inference or 1,000 inferences.

    Attributes:
        name: The counted thing, singular ("inference", "request", "user").
        per: How many counted things one functional unit holds (> 0): 1 for "per inference",
            1000 for "per 1,000 inferences".
        plural: The plural of ``name``; ``name + "s"`` when not given.

    ``FunctionalUnit("inference", 1000).label`` is ``"per 1,000 inferences"``.
    """

    name: str = "inference"
    per: float = 1
    plural: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        per = positive("per", self.per)
        object.__setattr__(self, "per", int(per) if per.is_integer() else per)
        if self.plural is None:
            object.__setattr__(self, "plural", f"{self.name}s")
        elif not isinstance(self.plural, str) or not self.plural.strip():
            raise ValueError(f"plural must be a non-empty string or None, got {self.plural!r}")

    @property
    def plural_name(self) -> str:
        return self.plural

    @property
    def label(self) -> str:
        """``"per inference"`` or ``"per 1,000 inferences"``."""
        if self.per == 1:
            return f"per {self.name}"
        return f"per {_format_count(self.per)} {self.plural_name}"

    def count(self, items: float) -> float:
        """``R`` for a number of counted things: ``items / per`` (12,500 inferences are 12.5
        units of "per 1,000 inferences")."""
        return non_negative("items", items) / self.per

    def from_per_item(self, value_per_item: float) -> float:
        """A figure per counted thing (per inference) expressed per functional unit."""
        return _number("value_per_item", value_per_item) * self.per

    def to_per_item(self, value_per_unit: float) -> float:
        """A figure per functional unit expressed per counted thing (per inference)."""
        return _number("value_per_unit", value_per_unit) / self.per

    def conversion_factor(self, to: FunctionalUnit) -> float:
        """The factor taking a score per ``self`` to a score per ``to``: ``to.per / self.per``.

        Raises:
            ValueError: the two units count different things (inferences vs users): no
                factor converts those without a further, stated assumption.
        """
        if not isinstance(to, FunctionalUnit):
            raise TypeError(f"to must be a FunctionalUnit, got {type(to).__name__}: {to!r}")
        if to.name != self.name:
            raise ValueError(
                f"cannot convert a score {self.label} to one {to.label}: they count different things "
                f"({self.name!r} vs {to.name!r})"
            )
        return to.per / self.per

    def convert(self, score: float, to: FunctionalUnit) -> float:
        """A score per ``self`` as a score per ``to`` (same counted thing, other size)."""
        return _number("score", score) * self.conversion_factor(to)

    def to_dict(self) -> dict:
        return {"name": self.name, "per": self.per, "plural": self.plural_name, "label": self.label}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionalUnit:
        if not isinstance(data, Mapping):
            raise ValueError(f"functional unit must be a dict, got {type(data).__name__} {data!r}")
        unknown = sorted(str(k) for k in data if k not in ("name", "per", "plural", "label"))
        if unknown:
            raise ValueError(f"unknown functional unit key(s) {', '.join(map(repr, unknown))}; valid: name, per, plural")
        return cls(name=data.get("name", "inference"), per=data.get("per", 1), plural=data.get("plural"))


# --------------------------------------------------------------------------- report


def _intensity_source(source: Any) -> tuple[dict, list[str]]:
    """Validate the intensity's provenance: ``provider`` required, ``time`` recommended."""
    if not isinstance(source, Mapping):
        raise ValueError(f"intensity_source must be a dict, got {type(source).__name__}: {source!r}")
    out = {str(k): _iso(v) if isinstance(v, datetime) and v.tzinfo is not None else v for k, v in source.items()}
    if "time" in source:
        out["time"] = source["time"]
    provider = out.get("provider")
    if not isinstance(provider, str) or not provider.strip():
        raise ValueError(f"intensity_source['provider'] must be a non-empty string, got {provider!r}")
    notes = []
    when = out.get("time")
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"intensity_source['time'] must be timezone-aware, got {when.isoformat()}")
        out["time"] = _iso(when)
    elif isinstance(when, str):
        try:
            parsed = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"intensity_source['time'] must be an ISO 8601 time, got {when!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"intensity_source['time'] must carry a UTC offset, got {when!r}")
        out["time"] = _iso(parsed)
    elif when is None:
        out["time"] = None
        notes.append("the intensity's time was not given: the score cannot be tied to a time of use")
    else:
        raise ValueError(f"intensity_source['time'] must be a datetime or ISO 8601 string, got {when!r}")
    for key in ("region", "data_kind", "signal"):
        out.setdefault(key, None)
    return out, notes


@dataclass(frozen=True)
class SciReport:
    """One SCI score with everything the specification's "Report" step asks to disclose.

    Build it with :meth:`compute`, which derives ``M`` and the score from their inputs so the
    record is consistent by construction; :meth:`to_dict` is the JSON-ready record (schema
    ``greenkfp.sci_report/v1``). Training emissions, when given, are reported apart in
    ``lifecycle`` and never enter the score.
    """

    sci: float
    functional_unit: FunctionalUnit
    functional_units: float
    items: float
    energy_kwh: float
    energy_method: str
    energy_detail: str
    energy_parts: tuple[dict, ...]
    intensity_g_per_kwh: float
    intensity_source: dict
    embodied_g: float
    embodied_terms: dict
    software_boundary: dict
    methodology: str
    hardware_profile: dict | None
    uncertainty: str | None
    benchmark: dict | None = None
    lifecycle: dict | None = None
    notes: tuple[str, ...] = ()
    pue: float = 1.0
    subject: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def operational_g(self) -> float:
        return self.energy_kwh * self.intensity_g_per_kwh

    @property
    def total_g(self) -> float:
        """``C = O + M`` over the measured period (before dividing by ``R``)."""
        return self.operational_g + self.embodied_g

    @property
    def per_item_g(self) -> float:
        """gCO2eq per counted thing (per inference)."""
        return self.total_g / self.items

    @classmethod
    def compute(
        cls,
        *,
        energy_kwh: float,
        energy_method: str,
        intensity_g_per_kwh: float,
        intensity_source: Mapping[str, Any],
        total_embodied_g: float,
        time_reserved: timedelta,
        expected_lifespan: timedelta,
        resources_reserved: float,
        total_resources: float,
        items: float,
        functional_unit: FunctionalUnit | None = None,
        software_boundary: Mapping[str, Sequence[str]],
        methodology: str,
        energy_detail: str = "",
        energy_parts: Sequence[Mapping[str, Any]] = (),
        hardware_profile: Mapping[str, Any] | None = None,
        uncertainty: str | None = None,
        benchmark: Mapping[str, Any] | None = None,
        training_emissions_g: float | None = None,
        expected_lifetime_items: float | None = None,
        notes: Sequence[str] = (),
        pue: float = 1.0,
        subject: str | None = None,
        created_at: datetime | None = None,
    ) -> SciReport:
        """Compute ``M`` and the score, validate, and build the record.

        Args:
            energy_kwh: ``E`` over the measured period, kWh (PUE already applied, if any).
            energy_method: ``"measured"``, ``"modeled"`` or ``"mixed"``.
            intensity_g_per_kwh: ``I``, gCO2eq/kWh.
            intensity_source: Where ``I`` came from: ``provider`` (required), ``region``,
                ``data_kind`` (e.g. forecast, actual, yearly average), ``signal``, ``time``
                (timezone-aware datetime or ISO 8601 string).
            total_embodied_g, time_reserved, expected_lifespan, resources_reserved,
                total_resources: the terms of ``M``, see :func:`embodied_share`.
            items: How many counted things (inferences) the period delivered (> 0).
            functional_unit: ``R`` (default: per inference).
            software_boundary: ``{"included": [...], "excluded": [...]}``.
            methodology: How each part was quantified, in words.
            energy_detail, energy_parts: How ``E`` was obtained, whole and per part.
            hardware_profile: The profile the figures rest on (a dict).
            uncertainty: Required when any energy is modeled: what is known of its error.
            benchmark: The benchmark summary behind ``items`` and ``time_reserved``.
            training_emissions_g: Training emissions, reported apart (never in the score).
            expected_lifetime_items: Inferences expected over the model's life; with it the
                lifecycle total ``training + items x per-item carbon`` is reported.
            notes: Anything else a reader should know.
            pue: The data-centre PUE applied to ``E`` (1.0: none applied).
            subject: What was scored, e.g. the model variant's name.
        """
        unit = functional_unit if functional_unit is not None else FunctionalUnit()
        if not isinstance(unit, FunctionalUnit):
            raise TypeError(f"functional_unit must be a FunctionalUnit, got {type(unit).__name__}: {unit!r}")
        if energy_method not in ENERGY_METHODS:
            raise ValueError(f"energy_method must be one of {', '.join(ENERGY_METHODS)}, got {energy_method!r}")
        if energy_method != "measured" and not (isinstance(uncertainty, str) and uncertainty.strip()):
            raise ValueError(f"uncertainty must describe the error of {energy_method} energy, got {uncertainty!r}")
        n_items = positive("items", items)
        r = unit.count(n_items)
        energy = non_negative("energy_kwh", energy_kwh)
        intensity = non_negative("intensity_g_per_kwh", intensity_g_per_kwh)
        pue_value = _number("pue", pue)
        if pue_value < 1:
            raise ValueError(f"pue must be >= 1, got {pue!r}")
        source, source_notes = _intensity_source(intensity_source)
        embodied = embodied_share(total_embodied_g, time_reserved, expected_lifespan, resources_reserved, total_resources)
        score = sci_score(energy, intensity, embodied, r)
        if not isinstance(methodology, str) or not methodology.strip():
            raise ValueError(f"methodology must be a non-empty string, got {methodology!r}")
        boundary = _boundary(software_boundary)
        terms = {
            "TE_g": float(total_embodied_g),
            "TiR_s": time_reserved.total_seconds(),
            "EL_s": expected_lifespan.total_seconds(),
            "RR": float(resources_reserved),
            "ToR": float(total_resources),
            "time_share": time_reserved.total_seconds() / expected_lifespan.total_seconds(),
            "resource_share": float(resources_reserved) / float(total_resources),
        }
        per_item = (energy * intensity + embodied) / n_items
        lifecycle = _lifecycle(training_emissions_g, expected_lifetime_items, per_item, unit)
        moment = created_at or datetime.now(timezone.utc)
        return cls(
            sci=score,
            functional_unit=unit,
            functional_units=r,
            items=n_items,
            energy_kwh=energy,
            energy_method=energy_method,
            energy_detail=energy_detail,
            energy_parts=tuple(dict(p) for p in energy_parts),
            intensity_g_per_kwh=intensity,
            intensity_source=source,
            embodied_g=embodied,
            embodied_terms=terms,
            software_boundary=boundary,
            methodology=methodology,
            hardware_profile=None if hardware_profile is None else dict(hardware_profile),
            uncertainty=uncertainty,
            benchmark=None if benchmark is None else dict(benchmark),
            lifecycle=lifecycle,
            notes=tuple(notes) + tuple(source_notes),
            pue=pue_value,
            subject=subject,
            created_at=moment,
        )

    def to_dict(self) -> dict:
        """The JSON-ready record: plain dicts, lists, numbers and strings."""
        unit = self.functional_unit
        return {
            "schema": SCHEMA,
            "subject": self.subject,
            "created_at": _iso(self.created_at),
            "sci": {
                "value": self.sci,
                "unit": f"gCO2eq {unit.label}",
                "per_item_g": self.per_item_g,
                "formula": "SCI = (E x I + M) / R",
                "method": f"derived from E ({self.energy_method}), I, M (modeled) and R (counted)",
            },
            "R": {
                "count": self.functional_units,
                "unit": unit.label,
                "items": self.items,
                "functional_unit": unit.to_dict(),
                "conversion": f"R = {_format_count(self.items)} {unit.plural_name} / {_format_count(unit.per)} "
                              f"= {self.functional_units:g} functional units",
                "method": "counted",
            },
            "E": {
                "kwh": self.energy_kwh,
                "method": self.energy_method,
                "detail": self.energy_detail,
                "parts": [dict(p) for p in self.energy_parts],
                "pue": self.pue,
                "per_item_kwh": self.energy_kwh / self.items,
            },
            "I": {"g_per_kwh": self.intensity_g_per_kwh, "source": dict(self.intensity_source),
                  "method": "as given by the source (see source.data_kind)"},
            "O": {"g": self.operational_g, "formula": "O = E x I"},
            "M": {"g": self.embodied_g, "formula": "M = TE x (TiR / EL) x (RR / ToR)",
                  "method": "modeled: TE is an estimate from the hardware profile", **self.embodied_terms},
            "C": {"g": self.total_g, "formula": "C = O + M, over the measured period"},
            "software_boundary": {k: list(v) for k, v in self.software_boundary.items()},
            "methodology": self.methodology,
            "hardware_profile": None if self.hardware_profile is None else dict(self.hardware_profile),
            "uncertainty": self.uncertainty,
            "benchmark": None if self.benchmark is None else dict(self.benchmark),
            "lifecycle": None if self.lifecycle is None else dict(self.lifecycle),
            "notes": list(self.notes),
            "units": dict(UNITS),
        }

    def to_markdown(self) -> str:
        """A short human-readable summary (a Markdown table and the boundary)."""
        unit = self.functional_unit
        source = self.intensity_source
        where = ", ".join(str(source[k]) for k in ("region", "data_kind", "time") if source.get(k))
        rows = [
            ("SCI", f"{self.sci:.6g} gCO2eq {unit.label}"),
            ("E (energy)", f"{self.energy_kwh:.6g} kWh, {self.energy_method}"),
            ("I (grid intensity)", f"{self.intensity_g_per_kwh:.6g} gCO2eq/kWh from {source['provider']}"
                                    + (f" ({where})" if where else "")),
            ("M (embodied share)", f"{self.embodied_g:.6g} gCO2eq"),
            ("R (functional units)", f"{self.functional_units:g} ({_format_count(self.items)} {unit.plural_name})"),
        ]
        if self.lifecycle and self.lifecycle.get("total_g") is not None:
            rows.append(("lifecycle total (apart from SCI)", f"{self.lifecycle['total_g']:.6g} gCO2eq"))
        title = f"# SCI: {self.subject}" if self.subject else "# SCI"
        lines = [title, "", "| | |", "|---|---|"]
        lines += [f"| {label} | {value.replace('|', '/')} |" for label, value in rows]
        lines += ["", f"**Included:** {'; '.join(self.software_boundary['included'])}",
                  "", f"**Excluded:** {'; '.join(self.software_boundary['excluded'])}"]
        if self.uncertainty:
            lines += ["", f"**Uncertainty:** {self.uncertainty}"]
        return "\n".join(lines) + "\n"


def _boundary(boundary: Any) -> dict:
    if not isinstance(boundary, Mapping):
        raise ValueError(f"software_boundary must be a dict with 'included' and 'excluded', got {boundary!r}")
    out = {}
    for key in ("included", "excluded"):
        items = boundary.get(key)
        if isinstance(items, str) or not isinstance(items, Sequence) or not items \
                or not all(isinstance(i, str) and i.strip() for i in items):
            raise ValueError(f"software_boundary[{key!r}] must be a non-empty list of strings, got {items!r}")
        out[key] = [str(i) for i in items]
    extra = sorted(str(k) for k in boundary if k not in out)
    if extra:
        raise ValueError(f"unknown software_boundary key(s) {', '.join(map(repr, extra))}; valid: included, excluded")
    return out


def _lifecycle(training_g: Any, expected_items: Any, per_item_g: float, unit: FunctionalUnit) -> dict | None:
    if training_g is None and expected_items is None:
        return None
    training = None if training_g is None else non_negative("training_emissions_g", training_g)
    expected = None if expected_items is None else non_negative("expected_lifetime_items", expected_items)
    out = {
        "training_emissions_g": training,
        "expected_lifetime_items": expected,
        "item": unit.name,
        "per_item_g": per_item_g,
        "inference_emissions_g": None,
        "total_g": None,
        "note": "reported apart from the SCI score: training is a one-off cost, not a per-"
                f"{unit.name} rate, and is never folded into the score",
    }
    if expected is not None:
        out["inference_emissions_g"] = expected * per_item_g
        out["total_g"] = (training or 0.0) + out["inference_emissions_g"]
        out["formula"] = "total = training emissions + expected lifetime items x per-item carbon (E x I + M per item)"
        if training is None:
            out["note"] += "; no training emissions were given, so the total holds inference only"
    else:
        out["note"] += "; no expected lifetime volume was given, so no lifecycle total is computed"
    return out
