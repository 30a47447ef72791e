"""The records that cross a step boundary, one frozen dataclass each, and their renderings.

Every record a step writes for another step (or for the CLI) is defined here once: the gate
decision, the training record, the variant list, the SCI report, the selection record, the
sustainability report and the carbon-budget records (ledger entry, exception, status,
reservation decision). Each carries a schema id (``greenkfp.<record>/v<N>``, the ``schema`` key
of its JSON), reads and writes itself with :meth:`to_json` / :meth:`from_json`, and renders
itself (Markdown for the KFP UI, a metrics dict for ``Output[Metrics]``, rows for tables).
Steps and the CLI read attributes, never nested keys.

Reading is strict where it matters: a missing field, a value of the wrong type, or a record of
another schema version raises :class:`RecordError` naming the field (``regions[0].best_window.
start``) and the value. Keys this version does not know are kept in ``extra`` and written back,
so additions made elsewhere survive a round trip.

Standard library only: embedded as a top-level module in portable component builds. The KFP
artifact types these records travel as live in :mod:`greenkfp.components.artifacts`.
"""

from __future__ import annotations

import json
import math
import os
import types
import typing
from dataclasses import MISSING as _dataclass_missing
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

from ._files import write_atomic

__all__ = [
    "AuditBaseline",
    "AuditSources",
    "BoardException",
    "BoardTransfer",
    "BudgetStatus",
    "CloudExportSource",
    "ExceptionGrant",
    "GateAttempt",
    "GateDecisionRecord",
    "GateInputs",
    "GateRegion",
    "GateSummary",
    "InferencePart",
    "IntervalFigure",
    "MAX_GRAMS",
    "LEDGER_KINDS",
    "LEVERS",
    "LedgerEntry",
    "LeverSaving",
    "LeverTotal",
    "ModelFacts",
    "ModelFigures",
    "QuarterAssumptions",
    "QuarterProgress",
    "QuarterSources",
    "QuarterTeam",
    "QuarterTeamMonth",
    "QuarterlyReport",
    "RecordError",
    "Reservation",
    "ReductionTarget",
    "RoundSeries",
    "RunFacts",
    "SciBenchmark",
    "SciDetail",
    "SciEnergy",
    "SciEntry",
    "SciReport",
    "SciScore",
    "Saving",
    "Savings",
    "SelectionCandidate",
    "SelectionExcluded",
    "SelectionObjective",
    "SelectionRecord",
    "SustainabilityReport",
    "TeamBaseline",
    "TeamCost",
    "TeamImpact",
    "TotalPart",
    "TrainingCandidate",
    "TrainingEmissions",
    "TrainingEnergy",
    "TrainingPart",
    "TrainingRecord",
    "TrajectoryPoint",
    "VariantEntry",
    "VariantList",
    "WindowRecord",
    "operations",
    "read_record",
    "grams_text",
    "write_record",
]


_NO_VALUE = object()


class RecordError(ValueError):
    """A record that cannot be read: names the record, the field and the value."""

    def __init__(self, record: str, field_path: str, problem: str, value: Any = _NO_VALUE, source: str | None = None):
        self.record, self.field, self.problem, self.value, self.source = record, field_path, problem, value, source
        shown = repr(value)
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        where = f" (in {source})" if source else ""
        super().__init__(f"{record}{where}: field {field_path!r} {problem}" + ("" if value is _NO_VALUE else f", got {shown}"))


# --------------------------------------------------------------------------- machinery

_MISSING = object()
_hints: dict[type, dict[str, Any]] = {}


def _type_hints(cls: type) -> dict[str, Any]:
    if cls not in _hints:
        _hints[cls] = typing.get_type_hints(cls)
    return _hints[cls]


_shapes: dict[Any, tuple[Any, tuple, Any]] = {}


def _shape(tp: Any) -> tuple[Any, tuple, Any]:
    """``(typing.get_origin(tp), typing.get_args(tp), the type an Optional holds)``, worked out
    once per annotation (reading many records spends its time here otherwise)."""
    try:
        return _shapes[tp]
    except KeyError:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        inner = None
        if origin in (Union, types.UnionType):
            (inner,) = [a for a in args if a is not type(None)]
        _shapes[tp] = shape = (origin, args, inner)
        return shape


_specs: dict[type, tuple[tuple[str, Any, bool, bool], ...]] = {}


def _field_specs(cls: type) -> tuple[tuple[str, Any, bool, bool], ...]:
    """(name, annotation, has a default, needs a meaning check) of each field of ``cls`` but
    ``extra``, worked out once per class."""
    specs = _specs.get(cls)
    if specs is None:
        hints = _type_hints(cls)
        checked = _TIME_FIELDS | set(getattr(cls, "_CHOICES", {})) | set(getattr(cls, "_NON_NEGATIVE", ()))
        specs = _specs[cls] = tuple(
            (f.name, hints[f.name], f.default is not _dataclass_missing or f.default_factory is not _dataclass_missing,
             f.name in checked)
            for f in fields(cls) if f.name != "extra")
    return specs


def _join(path: str, name: str) -> str:
    return name if not path else f"{path}.{name}"


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict or tp is dict:
        return "an object"
    if isinstance(tp, type) and issubclass(tp, _Part):
        return f"an object ({tp.__name__})"
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _load(tp: Any, value: Any, path: str, title: str) -> Any:
    """``value`` (parsed JSON) checked against and converted to the annotation ``tp``."""
    if tp is Any:
        return value
    if tp is float and type(value) is float and math.isfinite(value):  # the common case, first
        return value
    if tp is str and type(value) is str:
        return value
    origin, args, inner = _shape(tp)
    if inner is not None:
        if value is None:
            if type(None) in args:
                return None
            raise RecordError(title, path, f"must be {_type_name(tp)}", value)
        try:
            return _load(inner, value, path, title)
        except RecordError as exc:
            if exc.field != path:
                raise
            raise RecordError(title, path, f"must be {_type_name(tp)}", value) from None
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        if isinstance(value, (list, tuple)):
            inner = args[0]
            return tuple(_load(inner, v, f"{path}[{i}]", title) for i, v in enumerate(value))
    elif origin is dict or tp is dict:
        if isinstance(value, dict):
            if not args or args[1] is Any:
                return dict(value)
            return {k: _load(args[1], v, f"{path}[{k!r}]", title) for k, v in value.items()}
    elif isinstance(tp, type) and issubclass(tp, _Part):
        if isinstance(value, dict):
            return tp._load_fields(value, path, title)
    else:  # pragma: no cover - a field annotation this machinery does not know
        raise TypeError(f"records: unsupported annotation {tp!r} at {path}")
    raise RecordError(title, path, f"must be {_type_name(tp)}", value)


#: Fields that hold a moment: ISO 8601 with a time zone, or the record is refused.
_TIME_FIELDS = frozenset({"decided_at", "start_at", "start", "end", "retrieved_at", "first_point", "data_end",
                          "started_at", "ended_at", "earliest_start", "deadline", "at", "as_of", "expires_at",
                          "requested_at", "generated_at", "settled_at"})


def _check_meaning(cls: type, name: str, value: Any, path: str, title: str) -> None:
    """What a type cannot say: a moment is an aware ISO 8601 time, a choice is one of its values,
    a duration or count is not negative."""
    if value is None:
        return
    if name in _TIME_FIELDS and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
        except ValueError:
            raise RecordError(title, path, "must be an ISO 8601 time", value) from None
        if moment.tzinfo is None:
            raise RecordError(title, path, "must be an ISO 8601 time with a time zone", value)
    choices = getattr(cls, "_CHOICES", {}).get(name)
    if choices and value not in choices:
        raise RecordError(title, path, f"must be one of {', '.join(choices)}", value)
    if name in getattr(cls, "_NON_NEGATIVE", ()) and value < 0:
        raise RecordError(title, path, "must be >= 0", value)


def _dump(value: Any) -> Any:
    if isinstance(value, _Part):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class _Part:
    """A nested part of a record: fields from the JSON object's keys; unknown keys kept in ``extra``."""

    extra: dict = field(default_factory=dict, kw_only=True, compare=False, repr=False)

    #: Fields left out of the JSON while None (they exist only in some states of the record).
    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset()

    @classmethod
    def from_dict(cls, data: Any):
        """The part from its JSON object; :class:`RecordError` names a missing or wrong field."""
        if not isinstance(data, dict):
            raise RecordError(cls.__name__, "(record)", "must be a JSON object", data)
        return cls._load_fields(data, "", cls.__name__)

    @classmethod
    def _load_fields(cls, data: dict, path: str, title: str, owns_schema: bool = False):
        values, specs = {}, _field_specs(cls)
        for name, hint, has_default, checked in specs:
            raw = data.get(name, _MISSING)
            if raw is _MISSING:
                if has_default:
                    continue
                raise RecordError(title, _join(path, name), "is missing")
            where = f"{path}.{name}" if path else name
            values[name] = value = _load(hint, raw, where, title)
            if checked:
                _check_meaning(cls, name, value, where, title)
        extra = {}
        if len(data) > len(values):
            names = {spec[0] for spec in specs}
            extra = {k: v for k, v in data.items()
                     if k not in names and k != "extra" and not (owns_schema and k == "schema")}
        return cls(**values, extra=extra)

    def to_dict(self) -> dict:
        """The JSON-ready dict (the record's JSON shape): fields, then any kept unknown keys."""
        omit = self._OMIT_IF_NONE
        data = {name: _dump(getattr(self, name)) for name, _, _, _ in _field_specs(type(self))
                if not (name in omit and getattr(self, name) is None)}
        data.update({k: v for k, v in self.extra.items() if k not in data})
        return data


R = TypeVar("R", bound="_Record")


@dataclass(frozen=True)
class _Record(_Part):
    """A top-level record: a JSON object with a ``schema`` key."""

    SCHEMA: ClassVar[str] = ""

    @property
    def schema(self) -> str:
        return self.SCHEMA

    @classmethod
    def from_dict(cls: type[R], data: Any) -> R:
        title = cls.__name__
        if not isinstance(data, dict):
            raise RecordError(title, "(record)", "must be a JSON object", data)
        _check_schema(cls.SCHEMA, data.get("schema", _MISSING), "schema", title)
        return cls._load_fields(data, "", title, owns_schema=True)

    @classmethod
    def from_json(cls: type[R], text: str | bytes) -> R:
        """Parse and validate; :class:`RecordError` names the field that is wrong."""
        return cls.from_dict(_parse(text, cls.__name__))

    def to_dict(self) -> dict:
        return {"schema": self.SCHEMA, **super().to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class _ListRecord:
    """A record whose JSON is a list of entries, each with the ``schema`` key (today's shape)."""

    entries: tuple

    SCHEMA: ClassVar[str] = ""
    ENTRY: ClassVar[type] = _Part

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index):
        return self.entries[index]

    @property
    def schema(self) -> str:
        return self.SCHEMA

    @classmethod
    def from_list(cls, data: Any):
        title = cls.__name__
        if not isinstance(data, list):
            raise RecordError(title, "(record)", "must be a JSON list of entries", data)
        entries = []
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise RecordError(title, f"[{i}]", "must be a JSON object", item)
            _check_schema(cls.SCHEMA, item.get("schema", _MISSING), f"[{i}].schema", title)
            entries.append(cls.ENTRY._load_fields(item, f"[{i}]", title, owns_schema=True))
        return cls(tuple(entries))

    @classmethod
    def from_json(cls, text: str | bytes):
        return cls.from_list(_parse(text, cls.__name__))

    def to_list(self) -> list[dict]:
        return [{"schema": self.SCHEMA, **e.to_dict()} for e in self.entries]

    def to_json(self) -> str:
        return json.dumps(self.to_list(), indent=2, sort_keys=True) + "\n"


def _parse(text: str | bytes, title: str) -> Any:
    if not isinstance(text, (str, bytes, bytearray)):
        raise RecordError(title, "(record)", "from_json takes JSON text (use from_dict for a dict)", type(text).__name__)
    try:
        return json.loads(text)
    except RecursionError:
        raise RecordError(title, "(record)", "is JSON nested too deeply to read", text[:80]) from None
    except ValueError as exc:
        raise RecordError(title, "(record)", f"is not JSON ({exc})", text[:80]) from None


def _check_schema(expected: str, found: Any, path: str, title: str) -> None:
    if found is _MISSING:
        raise RecordError(title, path, f"is missing (expected {expected!r})")
    if found != expected:
        raise RecordError(title, path, f"must be {expected!r} (this version reads that schema only)", found)


def read_record(cls, path: str | os.PathLike, *, max_bytes: int | None = None):
    """The record of type ``cls`` in the file at ``path``; the error names the file too. With
    ``max_bytes``, the file must be a regular file of at most that many bytes, checked before it
    is opened (:func:`~greenkfp.components._files.read_bounded`; else its
    :class:`~greenkfp.components._files.FileReadError`)."""
    source = os.fspath(path)
    try:
        if max_bytes is not None:
            from ._files import read_bounded

            text = read_bounded(path, max_bytes).decode("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if type(exc).__name__ == "FileReadError":
            raise

        raise RecordError(cls.__name__, "(record)", f"cannot be read as UTF-8 JSON: {exc}", source=source) from None
    try:
        return cls.from_json(text)
    except RecordError as exc:
        raise RecordError(exc.record, exc.field, exc.problem, exc.value, source=source) from None


def write_record(record: _Record | _ListRecord, path: str | os.PathLike) -> Path:
    """Write ``record``'s JSON to ``path`` atomically."""
    return write_atomic(path, record.to_json())


def _cell(text: Any) -> str:
    return str(text).replace("|", "/")


def _num(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}{unit}"


def _when(iso: str | None, pattern: str = "%Y-%m-%d %H:%M UTC") -> str:
    return "-" if not iso else datetime.fromisoformat(iso).strftime(pattern)


def _finite_metrics(figures: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in figures.items() if v is not None and math.isfinite(float(v))}


# --------------------------------------------------------------------------- gate decision


@dataclass(frozen=True)
class WindowRecord(_Part):
    start: str
    end: str
    average_gco2_per_kwh: float


@dataclass(frozen=True)
class GateRegion(_Part):
    """One candidate region's answer: the data's source and its best and run-now windows."""

    region: str
    provider: str
    data_kind: str
    signal: str
    best_window: WindowRecord
    run_now_window: WindowRecord
    candidates: int
    fallback_used: bool = False
    note: str | None = None
    retrieved_at: str | None = None
    granularity_seconds: int | None = None
    points: int | None = None
    first_point: str | None = None
    data_end: str | None = None

    @property
    def source(self) -> str:
        return f"{self.provider} ({self.data_kind.replace('_', ' ')}, {self.signal})"


@dataclass(frozen=True)
class GateAttempt(_Part):
    provider: str
    region: str
    ok: bool
    error_kind: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class GateInputs(_Part):
    """The policy the gate applied (no credentials: they never enter a record)."""

    regions: tuple[str, ...]
    duration_seconds: float
    provider: str
    fallback_providers: tuple[str, ...] = ()
    earliest_start: str | None = None
    deadline: str | None = None
    max_delay_seconds: float | None = None
    threshold_gco2_per_kwh: float | None = None
    threshold_percentile: float | None = None
    min_savings_percent: float = 0.0
    on_provider_failure: str = "fail_open"
    mode: str = "plan"
    energy_kwh: float | None = None
    provider_options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GateDecisionRecord(_Record):
    """The carbon gate's verdict and its full account: inputs, sources, windows, savings."""

    SCHEMA: ClassVar[str] = "greenkfp.gate_decision/v1"
    _CHOICES: ClassVar[dict] = {"action": ("run_now", "wait", "refuse"),
                                "failure_policy_applied": ("fail_open", "fail_closed")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"delay_seconds", "waited_seconds"})

    decided_at: str
    should_run: bool
    action: str
    reason: str
    region: str
    start_at: str
    delay_seconds: float
    inputs: GateInputs
    waited_seconds: float = 0.0
    chosen_window: WindowRecord | None = None
    run_now_window: WindowRecord | None = None
    home_region: str | None = None
    intensity_now_gco2_per_kwh: float | None = None
    intensity_window_gco2_per_kwh: float | None = None
    savings_percent: float | None = None
    emissions_now_g: float | None = None
    emissions_window_g: float | None = None
    savings_g: float | None = None
    threshold_gco2_per_kwh: float | None = None
    fallback_used: bool = False
    failure_policy_applied: str | None = None
    regions: tuple[GateRegion, ...] = ()
    attempts: tuple[GateAttempt, ...] = ()
    units: dict = field(default_factory=lambda: {
        "intensity": "gCO2eq/kWh", "energy": "kWh", "emissions": "g CO2eq", "delay": "s"})
    run_id: str | None = None

    @property
    def chosen_region(self) -> GateRegion | None:
        """The answer of the region the gate chose (None when no provider answered)."""
        return next((r for r in self.regions if r.region == self.region), None)

    @property
    def data_kinds(self) -> list[str]:
        return sorted({r.data_kind for r in self.regions})

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs summarising the decision, in reading order."""
        chosen, info = self.chosen_window, self.chosen_region
        rows = [
            ("decision", f"{self.action.replace('_', ' ')} (should_run={self.should_run})"),
            ("region", self.region),
            ("data source", info.source if info else "-"),
            ("intensity if run now", _num(self.intensity_now_gco2_per_kwh, " gCO2eq/kWh")
             + (f" in {self.home_region}" if self.home_region else "")),
            ("best window", f"{_when(chosen.start)} to {_when(chosen.end)}" if chosen else "-"),
            ("intensity in window", _num(self.intensity_window_gco2_per_kwh, " gCO2eq/kWh")),
            ("delay", "-" if self.delay_seconds is None else f"{self.delay_seconds / 3600:.1f} h"),
            ("savings", _num(self.savings_percent, " %")),
        ]
        if self.savings_g is not None:
            rows.append(("savings (modeled)",
                         f"{self.savings_g:.1f} g CO2eq for an estimated {self.inputs.energy_kwh} kWh"))
        if self.failure_policy_applied:
            rows.append(("provider failure", f"policy {self.failure_policy_applied} applied"))
        if self.fallback_used:
            rows.append(("fallback", "a fallback provider answered"))
        rows.append(("reason", self.reason))
        return rows

    def region_rows(self) -> list[tuple[str, str, str, str, str]]:
        """Per candidate region: region, source, run-now average, best window start, best average."""
        return [(r.region, f"{r.provider}, {r.data_kind.replace('_', ' ')}",
                 f"{r.run_now_window.average_gco2_per_kwh:.1f}", _when(r.best_window.start, "%a %d %b %H:%M"),
                 f"{r.best_window.average_gco2_per_kwh:.1f}") for r in self.regions]

    def markdown(self) -> str:
        """A Markdown summary for the KFP UI: the verdict, a table, and every region and attempt."""
        lines = ["# Carbon-forecast gate", "", "| | |", "|---|---|"]
        lines += [f"| {label} | {_cell(value)} |" for label, value in self.rows()]
        if self.regions:
            lines += ["", "## Regions", "", "| region | source | data | run now | best window | best average |",
                      "|---|---|---|---|---|---|"]
            for r in self.regions:
                lines.append(
                    f"| {r.region} | {r.provider} | {r.data_kind} | {r.run_now_window.average_gco2_per_kwh:.1f} | "
                    f"{_when(r.best_window.start)} | {r.best_window.average_gco2_per_kwh:.1f} |"
                )
            notes = sorted({r.note for r in self.regions if r.note})
            lines += [""] + [f"> {note}" for note in notes]
        failed = [a for a in self.attempts if not a.ok]
        if failed:
            lines += ["", "## Provider failures", ""] + [f"- {a.error}" for a in failed]
        lines += ["", "Intensities in gCO2eq/kWh; windows are time-weighted averages over the job's duration."]
        return "\n".join(lines) + "\n"

    def metrics(self) -> dict[str, float]:
        """The numbers the KFP UI charts (units in the names)."""
        return _finite_metrics({
            "should_run": 1.0 if self.should_run else 0.0,
            "delay_hours": self.delay_seconds / 3600,
            "intensity_now_gco2_per_kwh": self.intensity_now_gco2_per_kwh,
            "intensity_window_gco2_per_kwh": self.intensity_window_gco2_per_kwh,
            "savings_percent": self.savings_percent,
            "savings_g": self.savings_g,
        })

    def artifact_metadata(self) -> dict:
        return {"schema": self.SCHEMA, "action": self.action, "region": self.region, "units": "gCO2eq/kWh, s, g"}


# --------------------------------------------------------------------------- training record



@dataclass(frozen=True)
class TrainingCandidate(_Part):
    name: str
    estimator: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingEnergy(_Part):
    """The fit's energy as measured (or modeled) by CodeCarbon; every other figure in ``extra``."""

    available: bool
    method: str
    method_detail: str
    energy_kwh: float | None = None
    reason: str | None = None
    uncertainty: str | None = None

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"uncertainty"})


@dataclass(frozen=True)
class TrainingEmissions(_Part):
    codecarbon_g: float | None
    codecarbon_basis: str
    hourly_g: float | None = None
    hourly_basis: str | None = None
    hourly_pricing: dict | None = None
    hourly_unavailable_reason: str | None = None

    @property
    def hourly_or_reason(self) -> str:
        return self.hourly_basis or self.hourly_unavailable_reason or "-"


@dataclass(frozen=True)
class TrainingRecord(_Record):
    """One candidate's fit: accuracy, energy, and its emissions priced two ways."""

    SCHEMA: ClassVar[str] = "greenkfp.training/v1"

    candidate: TrainingCandidate
    accuracy: float
    macro_f1: float
    fit_seconds: float
    energy: TrainingEnergy
    emissions: TrainingEmissions
    model: dict = field(default_factory=dict)
    train_rows: int | None = None
    test_rows: int | None = None
    fit_threads: int | None = None
    units: dict = field(default_factory=lambda: {
        "energy": "kWh", "emissions": "g CO2eq", "intensity": "gCO2eq/kWh", "time": "s"})

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"fit_threads"})  # records from before it keep their shape

    @property
    def name(self) -> str:
        return self.candidate.name

    @property
    def emissions_g(self) -> tuple[float | None, str | None]:
        """The best training-emissions figure and its basis: hourly grid, else CodeCarbon's."""
        if self.emissions.hourly_g is not None:
            return self.emissions.hourly_g, "hourly grid intensity over the fit (training step)"
        if self.emissions.codecarbon_g is not None:
            return self.emissions.codecarbon_g, "CodeCarbon's figure (training step)"
        return None, None

    def row(self) -> tuple[str, ...]:
        """candidate, accuracy, macro F1, fit s, energy Wh, method, mg CO2eq CodeCarbon, mg CO2eq hourly."""

        def fmt(value):
            return "n/a" if value is None else f"{value * 1e3:.3g}"

        return (self.name, f"{self.accuracy:.4f}", f"{self.macro_f1:.4f}", f"{self.fit_seconds:.2f}",
                fmt(self.energy.energy_kwh), self.energy.method, fmt(self.emissions.codecarbon_g),
                fmt(self.emissions.hourly_g))

    def markdown(self) -> str:
        """A Markdown summary of the fit for the KFP UI."""
        energy, emissions = self.energy, self.emissions

        def fmt(value, unit, digits=4):
            return "unavailable" if value is None else f"{value:.{digits}g} {unit}"

        lines = [
            f"# Training: {self.name}",
            "",
            f"`{self.candidate.estimator}` with `{self.candidate.params}`",
            "",
            "| | |",
            "|---|---|",
            f"| accuracy | {self.accuracy:.4f} |",
            f"| macro F1 | {self.macro_f1:.4f} |",
            f"| fit time | {self.fit_seconds:.2f} s |",
            f"| energy | {fmt(energy.energy_kwh, 'kWh')} ({energy.method}) |",
            f"| emissions, CodeCarbon | {fmt(emissions.codecarbon_g, 'g CO2eq')} ({emissions.codecarbon_basis}) |",
            f"| emissions, hourly grid | {fmt(emissions.hourly_g, 'g CO2eq')} ({emissions.hourly_or_reason}) |",
            "",
            f"Energy method: {energy.method_detail}",
        ]
        if not energy.available:
            lines += ["", f"> Energy unavailable: {energy.reason}"]
        if energy.uncertainty:  # the energy model's own caveat (greenkfp.components.energy.modeled_caveat)
            lines += ["", f"> {energy.uncertainty}"]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- variant list


@dataclass(frozen=True)
class VariantEntry(_Part):
    """One ONNX variant of a trained model: how it was made, where it is, how it compares."""

    name: str
    produced: bool
    precision: str
    method: str
    eligible: bool
    eligibility_reason: str
    tolerance_points: float
    original_accuracy: float
    source_path: str
    source_format: str
    source_estimator: str
    test_rows: int
    reason: str | None = None
    path: str | None = None
    file: str | None = None
    opset: int | None = None
    opset_imports: dict[str, int] | None = None
    size_bytes: int | None = None
    size_ratio_vs_fp32: float | None = None
    accuracy: float | None = None
    accuracy_change_points: float | None = None
    agreement_rate: float | None = None
    max_probability_diff: float | None = None
    calibration_rows: int | None = None
    per_channel: bool | None = None
    sha256: str | None = None
    build_seconds: float | None = None
    notes: tuple[str, ...] = ()

    @property
    def why_not(self) -> str | None:
        """Why the variant was not produced (the reason) or is not eligible; None when it is."""
        if not self.produced:
            return self.reason
        return None if self.eligible else self.eligibility_reason


def _fmt(value, spec: str, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:{spec}}{unit}"


@dataclass(frozen=True)
class VariantList(_ListRecord):
    """Every requested variant of one trained model (the quantization step's list)."""

    entries: tuple[VariantEntry, ...]

    SCHEMA: ClassVar[str] = "greenkfp.quantization/v1"
    ENTRY: ClassVar[type] = VariantEntry

    def get(self, name: str) -> VariantEntry | None:
        return next((v for v in self.entries if v.name == name), None)

    def metrics(self) -> dict[str, float]:
        """``<variant>_<figure>`` numbers with units in the name; variants not produced left out."""
        figures: dict[str, Any] = {}
        for v in self.entries:
            if not v.produced:
                continue
            for key in ("accuracy", "accuracy_change_points", "agreement_rate", "max_probability_diff",
                        "size_bytes", "size_ratio_vs_fp32"):
                figures[f"{v.name}_{key}"] = getattr(v, key)
            figures[f"{v.name}_eligible"] = 1.0 if v.eligible else 0.0
        return _finite_metrics(figures)

    def markdown(self) -> str:
        """A Markdown table of the variants (and why any was not produced or is not eligible)."""
        if not self.entries:
            return "# ONNX variants\n\nNo variants requested.\n"
        first = self.entries[0]
        lines = [
            f"# ONNX variants of `{Path(first.source_path).name}`",
            "",
            f"Source: {first.source_format} ({first.source_estimator}); original test accuracy "
            f"{first.original_accuracy:.4f} on {first.test_rows} rows; tolerance {first.tolerance_points:g} "
            "accuracy points.",
            "",
            "| variant | precision | size | x smaller than fp32 | accuracy | change (points) | agreement "
            "| max prob. diff | eligible |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.entries:
            if not r.produced:
                lines.append(f"| {r.name} | {r.precision} | not produced | | | | | | no |")
                continue
            lines.append(
                f"| {r.name} | {r.precision} | {_fmt(r.size_bytes / 1024 if r.size_bytes else None, ',.1f', ' KiB')} "
                f"| {_fmt(r.size_ratio_vs_fp32, '.2f', 'x')} | {_fmt(r.accuracy, '.4f')} "
                f"| {_fmt(r.accuracy_change_points, '+.2f')} | {_fmt(r.agreement_rate, '.4f')} "
                f"| {_fmt(r.max_probability_diff, '.2e')} | {'yes' if r.eligible else '**no**'} |"
            )
        lines += ["", "Methods:", ""]
        lines += [f"- **{r.name}**: {r.method}" for r in self.entries]
        remarks = [f"- **{r.name}** not produced: {r.reason}" for r in self.entries if not r.produced]
        remarks += [f"- **{r.name}** not eligible: {r.eligibility_reason}"
                    for r in self.entries if r.produced and not r.eligible]
        remarks += [f"- **{r.name}**: {note}" for r in self.entries for note in r.notes]
        if remarks:
            lines += ["", "Remarks:", "", *remarks]
        lines += ["", "Accuracy change = (variant accuracy - original accuracy) x 100; agreement = share of test rows "
                  "predicted the same as the original; max prob. diff = largest absolute class-probability "
                  "difference against the original."]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- SCI report


@dataclass(frozen=True)
class SciScore(_Part):
    value: float
    unit: str
    per_item_g: float


@dataclass(frozen=True)
class SciEnergy(_Part):
    """E of the SCI: the energy figures (parts, PUE and the rest in ``extra``)."""

    kwh: float
    method: str
    per_item_kwh: float


@dataclass(frozen=True)
class SciBenchmark(_Part):
    """The inference benchmark behind E: latency percentiles (ms) and batch throughput."""

    latency_ms: dict[str, float]
    batch_rows_per_s: float

    def latency(self, percentile: str) -> float | None:
        return self.latency_ms.get(percentile)


@dataclass(frozen=True)
class SciDetail(_Part):
    """The full SCI report of one variant (I, M, R, C, notes, ... kept in ``extra``)."""

    sci: SciScore
    E: SciEnergy
    methodology: str
    software_boundary: dict = field(default_factory=dict)
    hardware_profile: dict | None = None
    uncertainty: str | None = None
    benchmark: SciBenchmark | None = None
    lifecycle: dict | None = None

    @property
    def hardware_name(self) -> str | None:
        return (self.hardware_profile or {}).get("name")


@dataclass(frozen=True)
class IntervalFigure(_Part):
    """A point estimate with its 95 % interval (``greenkfp.components.stats.Estimate`` in JSON)."""

    estimate: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    def text(self, fmt: str = ".4g", unit: str = "") -> str:
        return f"{self.estimate:{fmt}}{unit} [{self.low:{fmt}}, {self.high:{fmt}}]"


@dataclass(frozen=True)
class RoundSeries(_Part):
    """Per-round figures of one variant in an interleaved benchmark (round ``r`` of every
    variant of one ``group`` ran in the same round, so they pair)."""

    group: str
    per_inference_g: tuple[float, ...]
    energy_per_inference_kwh: tuple[float, ...]
    time_per_inference_s: tuple[float, ...]
    cpu_time_per_inference_s: tuple[float, ...]


def operations(macs: int | float | None, tree_comparisons: int | float | None) -> int | float | None:
    """Operations per inference (one row), comparable across model families: ``macs +
    tree_comparisons`` (a tree ensemble has 0 MACs but compares; see
    ``greenkfp.components.sci.graph.BASIS``). A missing figure counts 0 when the other is known;
    None when both are missing (nothing is known). The one definition: the graph figures and the
    selection's tie-break use it."""
    if macs is None and tree_comparisons is None:
        return None
    return (macs or 0) + (tree_comparisons or 0)


@dataclass(frozen=True)
class SciEntry(_Part):
    """One variant of one candidate: its SCI figures, or why it was not scored."""

    candidate: str | None
    variant: str
    status: str
    precision: str | None = None
    accuracy: float | None = None
    accuracy_change_points: float | None = None
    size_bytes: int | None = None
    training_emissions_g: float | None = None
    training_emissions_basis: str | None = None
    reason: str | None = None
    sci: float | None = None
    sci_unit: str | None = None
    energy_per_inference_kwh: float | None = None
    energy_method: str | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_p99_ms: float | None = None
    throughput_rows_per_s: float | None = None
    intensity_g_per_kwh: float | None = None
    intensity_basis: str | None = None
    lifecycle: dict | None = None
    report: SciDetail | None = None
    # interleaved benchmark (benchmark_variants): intervals over rounds, and graph figures
    sci_interval: IntervalFigure | None = None
    per_inference_g_interval: IntervalFigure | None = None
    energy_per_inference_kwh_interval: IntervalFigure | None = None
    time_per_inference_ms: IntervalFigure | None = None
    cpu_time_per_inference_ms: IntervalFigure | None = None
    latency_p95_ms_interval: IntervalFigure | None = None
    rounds: RoundSeries | None = None
    macs: int | None = None
    tree_comparisons: int | None = None
    weight_bytes: int | None = None
    graph_basis: str | None = None

    _SCORED_ONLY: ClassVar[frozenset] = frozenset({
        "sci", "sci_unit", "energy_per_inference_kwh", "energy_method", "latency_p50_ms", "latency_p95_ms",
        "latency_p99_ms", "throughput_rows_per_s", "intensity_g_per_kwh", "intensity_basis", "lifecycle", "report",
        "sci_interval", "per_inference_g_interval", "energy_per_inference_kwh_interval", "time_per_inference_ms",
        "cpu_time_per_inference_ms", "latency_p95_ms_interval", "rounds"})
    _INTERVAL_FIELDS: ClassVar[frozenset] = frozenset({
        "sci_interval", "per_inference_g_interval", "energy_per_inference_kwh_interval", "time_per_inference_ms",
        "cpu_time_per_inference_ms", "latency_p95_ms_interval", "rounds", "macs", "tree_comparisons",
        "weight_bytes", "graph_basis"})

    def to_dict(self) -> dict:
        """A scored entry has no ``reason``; a skipped one none of the scored figures."""
        data = super().to_dict()
        drop = ({"reason"} if self.scored else self._SCORED_ONLY) | self._INTERVAL_FIELDS
        return {k: v for k, v in data.items() if not (k in drop and v is None)}

    @property
    def operations(self) -> int | None:
        """``macs + tree_comparisons`` (:func:`operations`); None when neither is known."""
        return operations(self.macs, self.tree_comparisons)

    @property
    def name(self) -> str:
        """``<candidate>/<variant>``, the selection's name for it."""
        return f"{self.candidate}/{self.variant}"

    @property
    def scored(self) -> bool:
        return self.status == "scored"

    @property
    def per_inference_g(self) -> float | None:
        if self.per_inference_g_interval is not None:
            return self.per_inference_g_interval.estimate
        return None if self.report is None else self.report.sci.per_item_g


@dataclass(frozen=True)
class SciReport(_ListRecord):
    """The SCI evaluation of one candidate's variants (the SCI step's list)."""

    entries: tuple[SciEntry, ...]

    SCHEMA: ClassVar[str] = "greenkfp.sci_evaluation/v1"
    ENTRY: ClassVar[type] = SciEntry

    @property
    def scored(self) -> list[SciEntry]:
        return [e for e in self.entries if e.scored]

    def get(self, variant: str) -> SciEntry | None:
        return next((e for e in self.entries if e.variant == variant), None)

    def named(self, name: str) -> SciEntry | None:
        """The entry ``<candidate>/<variant>``."""
        return next((e for e in self.entries if e.name == name), None)

    @property
    def candidates(self) -> list[str | None]:
        """The candidates the entries belong to, in order of first appearance."""
        return list(dict.fromkeys(e.candidate for e in self.entries))

    def by_candidate(self) -> list[SciReport]:
        """One report per candidate, in order of first appearance."""
        return [SciReport(tuple(e for e in self.entries if e.candidate == c)) for c in self.candidates]

    def best_sci(self) -> float | None:
        scores = [e.sci for e in self.scored if e.sci is not None]
        return min(scores) if scores else None

    def metrics(self) -> dict[str, float]:
        """``<variant>_<figure>`` numbers for a KFP Metrics artifact (scored variants only)."""
        figures = {}
        several = len(self.candidates) > 1
        for e in self.scored:
            prefix = f"{e.candidate}_{e.variant}" if several else e.variant
            for key in ("sci", "energy_per_inference_kwh", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                        "throughput_rows_per_s", "accuracy"):
                figures[f"{prefix}_{key}"] = getattr(e, key)
            if e.sci_interval is not None:
                figures[f"{prefix}_sci_low"] = e.sci_interval.low
                figures[f"{prefix}_sci_high"] = e.sci_interval.high
        return _finite_metrics(figures)

    def notes(self) -> list[str]:
        """One line per distinct method disclosure (energy method, intensity, hardware profile)."""
        return sorted({
            f"SCI: E {e.energy_method}, I = {e.intensity_g_per_kwh:.1f} gCO2eq/kWh ({e.intensity_basis}), "
            f"M from the hardware profile '{e.report.hardware_name if e.report else None}'"
            for e in self.scored
        })

    def markdown(self) -> str:
        """A Markdown table of the SCI per variant, with the method disclosure."""
        if not self.entries:
            return "# SCI\n\nNo variants.\n"
        first = self.entries[0]
        several = len(self.candidates) > 1
        title = "all candidates, interleaved benchmark" if several else first.candidate
        lines = [f"# Software Carbon Intensity: {title}", "",
                 "| variant | accuracy | p95 latency ms | energy per inference kWh | SCI [95 % interval] | MACs | "
                 "weight bytes | status |", "|---|---|---|---|---|---|---|---|"]
        for e in self.entries:
            name = e.name if several else e.variant
            if not e.scored:
                lines.append(f"| {name} | | | | | | | skipped: {_cell(e.reason)} |")
                continue
            sci = e.sci_interval.text(".3g") if e.sci_interval is not None else f"{e.sci:.3g}"
            lines.append(f"| {name} | {e.accuracy:.4f} | {e.latency_p95_ms:.4f} | "
                         f"{e.energy_per_inference_kwh:.3g} ({e.energy_method}) | {sci} {e.sci_unit} | "
                         f"{'-' if e.macs is None else f'{e.macs:,}'} | "
                         f"{'-' if e.weight_bytes is None else f'{e.weight_bytes:,}'} | scored |")
        scored = self.scored
        if scored:
            top = scored[0]
            lines += ["", f"I = {top.intensity_g_per_kwh:.1f} gCO2eq/kWh ({top.intensity_basis})"]
            if top.report is not None:
                lines += ["", f"Boundary: {top.report.software_boundary}", "", f"Methodology: {top.report.methodology}"]
                if top.report.uncertainty:
                    lines += ["", f"> {top.report.uncertainty}"]
        if first.training_emissions_g is not None:
            lines += ["", f"Training emissions, reported apart from the SCI: {first.training_emissions_g:.3g} g CO2eq "
                          f"({first.training_emissions_basis})."]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- selection record


@dataclass(frozen=True)
class SelectionObjective(_Part):
    name: str
    direction: str


@dataclass(frozen=True)
class SelectionExcluded(_Part):
    name: str
    status: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class SelectionCandidate(_Part):
    """What happened to one candidate: chosen, front, dominated, or excluded and why."""

    name: str
    status: str
    model_uri: str | None = None
    on_front: bool = False
    eligible: bool = True
    eligibility_reason: str | None = None
    reasons: tuple[str, ...] = ()
    violations: tuple[dict, ...] = ()
    dominated_by: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict)
    normalized: dict | None = None
    score: float | None = None
    metadata: dict = field(default_factory=dict)
    #: Every constraint applied, kept or broken, with ``met`` (on the point estimate) and
    #: ``within_noise`` (the 95 % interval says otherwise); absent when no constraint applied.
    constraint_checks: tuple[dict, ...] | None = None

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"constraint_checks"})


@dataclass(frozen=True)
class SelectionRecord(_Record):
    """The selection step's decision: the chosen variant (if any), the front, and every exclusion."""

    SCHEMA: ClassVar[str] = "greenkfp.selection/v1"

    promote: bool
    chosen: str | None
    reason: str
    rule: str
    chosen_model_uri: str | None = None
    chosen_metrics: dict | None = None
    rule_definition: str | None = None
    score_direction: str | None = None
    tie_break: str | None = None
    weights: dict | None = None
    primary: str | None = None
    objectives: tuple[SelectionObjective, ...] = ()
    constraints: dict = field(default_factory=dict)
    accuracy_reference: dict | None = None
    normalization: dict = field(default_factory=dict)
    front: tuple[str, ...] = ()
    scores: dict = field(default_factory=dict)
    excluded: tuple[SelectionExcluded, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    candidates: tuple[SelectionCandidate, ...] = ()
    units: dict = field(default_factory=dict)
    baseline: str | None = None
    significance: dict | None = None
    energy_guard: str | None = None
    dominance: str | None = None
    #: the tie rule chose another front member than the rule's pick: {rule_pick, chosen, tied, on, decided}
    tie_break_choice: dict | None = None

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"baseline", "significance", "energy_guard", "dominance",
                                                    "tie_break_choice"})

    @property
    def verdict(self) -> str:
        return f"selected {self.chosen}" if self.promote else "promotion blocked"

    def markdown(self) -> str:
        lines = [f"# Selection: {self.verdict}", "", self.reason, "", f"Rule: {self.rule}; front: "
                 f"{', '.join(self.front) or 'empty'}"]
        lines += [f"- {e.name} ({e.status}): {'; '.join(e.reasons)}" for e in self.excluded]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- sustainability report


@dataclass(frozen=True)
class TrainingPart(_Part):
    """Training as scheduled (gate's run-now intensity) against as optimized (its window);
    ``realized`` False when the run did not wait (plan mode); ``hourly_g``: the fits' energy at
    the hours they actually ran (the training step's own pricing), a cross-check."""

    energy_kwh: float | None
    scheduled_g: float | None
    optimized_g: float | None
    basis: str
    energy_methods: tuple[str, ...] = ()
    energy_missing: tuple[str, ...] = ()
    intensity_scheduled_gco2_per_kwh: float | None = None
    intensity_optimized_gco2_per_kwh: float | None = None
    home_region: str | None = None
    chosen_region: str | None = None
    delay_seconds: float | None = None
    unavailable_reason: str | None = None
    scheduled_basis: str | None = None
    optimized_basis: str | None = None
    realized: bool | None = None
    hourly_g: float | None = None
    hourly_basis: str | None = None
    #: the gate's chosen window (ISO 8601, UTC) in ``chosen_region``: when training ran, or would have
    window_start: str | None = None
    window_end: str | None = None

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"unavailable_reason", "window_start", "window_end"})


@dataclass(frozen=True)
class ModelFigures(_Part):
    name: str
    accuracy: float
    per_inference_g: float
    sci: float | None = None
    sci_unit: str | None = None
    energy_method: str | None = None
    #: the accuracy's 95 % (Wilson) interval from the selection, when it has one
    accuracy_interval: IntervalFigure | None = None
    #: p95 latency of one inference batch, ms, and its interval from the benchmark's rounds
    latency_p95_ms: float | None = None
    latency_p95_ms_interval: IntervalFigure | None = None

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"accuracy_interval", "latency_p95_ms", "latency_p95_ms_interval"})


@dataclass(frozen=True)
class InferencePart(_Part):
    """Inference over the expected volume: the baseline against the selected variant."""

    expected_inferences: float
    scheduled_g: float | None
    optimized_g: float | None
    basis: str
    baseline: ModelFigures | None = None
    selected: ModelFigures | None = None
    #: why the selected variant: the selection's rule, its full reason, the count of candidates and
    #: of front members, and its verdict per objective against the baseline (95 % intervals)
    selection_rule: str | None = None
    selection_reason: str | None = None
    selection_candidates: int | None = None
    selection_front: int | None = None
    selection_verdicts: dict | None = None
    #: the selection's tie_break_choice: the tie rule chose another front member than the rule's pick
    selection_tie: dict | None = None

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"selection_rule", "selection_reason", "selection_candidates",
                                                    "selection_front", "selection_verdicts",
                                                    "selection_tie"})


@dataclass(frozen=True)
class TotalPart(_Part):
    scheduled_g: float | None
    optimized_g: float | None
    saved_g: float | None
    saved_percent: float | None = None
    accuracy_given_up_points: float | None = None
    unavailable_reason: str | None = None
    #: the selection's verdict on accuracy against the baseline, from their Wilson intervals
    accuracy_verdict: str | None = None

    _OMIT_IF_NONE: ClassVar[frozenset] = frozenset({"accuracy_verdict"})


@dataclass(frozen=True)
class Saving(_Part):
    """One saving (scheduled - optimized) as an estimate with its 95 % interval, in grams and as
    a percentage of the scheduled figure; ``significant`` when the grams' interval excludes zero."""

    g: IntervalFigure
    significant: bool
    percent: IntervalFigure | None = None
    basis: str | None = None

    @property
    def text(self) -> str:
        interval = f"{self.g.estimate:,.4g} g [95 % interval {self.g.low:,.4g} to {self.g.high:,.4g}]"
        if not self.significant:
            return f"no significant difference ({interval})"
        percent = "" if self.percent is None else (f", {self.percent.estimate:.1f} % [{self.percent.low:.1f} to "
                                                   f"{self.percent.high:.1f}]")
        return f"{interval}{percent}"


@dataclass(frozen=True)
class Savings(_Part):
    """Training, inference and total savings, each a :class:`Saving`."""

    training: Saving | None
    inference: Saving | None
    total: Saving | None
    method: str = ""


@dataclass(frozen=True)
class GateSummary(_Part):
    action: str | None
    data_kinds: tuple[str, ...] = ()
    failure_policy_applied: str | None = None


def _saved(scheduled: float | None, optimized: float | None) -> float | None:
    return None if scheduled is None or optimized is None else scheduled - optimized


@dataclass(frozen=True)
class SustainabilityReport(_Record):
    """The run as scheduled against as optimized: training, inference, the total saved."""

    SCHEMA: ClassVar[str] = "greenkfp.sustainability_report/v1"

    training: TrainingPart
    inference: InferencePart
    total: TotalPart
    promoted: bool | None
    gate: GateSummary
    caveats: tuple[str, ...] = ()
    savings: Savings | None = None
    units: dict = field(default_factory=lambda: {
        "emissions": "g CO2eq", "energy": "kWh", "intensity": "gCO2eq/kWh", "accuracy": "percentage points"})

    def metrics(self) -> dict[str, float]:
        """Numbers for the KFP UI. Each saving is logged with its 95 % interval and a
        ``_significant`` flag (1 or 0): a UI shows numbers only, and an estimate whose interval
        includes zero must not read as a saving."""
        # plan mode: training did not wait, so it emitted its scheduled figure; what waiting would
        # have emitted and saved goes under names of its own ("_if_waited"), never into a saving
        plan = self.training.realized is False
        figures = {
            "training_scheduled_g": self.training.scheduled_g,
            # plan mode: the table's "as optimized" training figure is had it waited, so it is named so
            "training_if_waited_g" if plan else "training_optimized_g": self.training.optimized_g,
            "inference_scheduled_g": self.inference.scheduled_g,
            "inference_optimized_g": self.inference.optimized_g,
            "accuracy_given_up_points": self.total.accuracy_given_up_points,
        }

        def add(name: str, saving: Saving, percent: IntervalFigure | None) -> None:
            figures.update({f"{name}_g": saving.g.estimate, f"{name}_g_low": saving.g.low,
                            f"{name}_g_high": saving.g.high,
                            f"{name}_significant": 1.0 if saving.significant else 0.0})
            if percent is not None:
                figures.update({f"{name}_percent": percent.estimate, f"{name}_percent_low": percent.low,
                                f"{name}_percent_high": percent.high})

        for part in ("training", "inference", "total"):
            saving = self.saving(part)
            if saving is not None:
                add(f"{part}_saved_if_waited" if plan and part != "inference" else f"{part}_saved",
                    saving, saving.percent)
        realised = self.saving("inference")
        if plan and realised is not None:  # the run's realised saving is the model choice's
            scale = 100.0 / self.total.scheduled_g if self.total.scheduled_g else None
            add("total_saved", realised, None if scale is None else IntervalFigure(
                realised.g.estimate * scale, realised.g.low * scale, realised.g.high * scale))
        elif self.saving("total") is None:  # no intervals (a report without savings): the point figures
            figures.update(total_saved_g=self.total.saved_g, total_saved_percent=self.total.saved_percent)
        return _finite_metrics(figures)

    def rows(self) -> list[tuple[str, float | None, float | None, float | None, str]]:
        """(part, scheduled g, optimized g, saved g, basis) for training, inference and the total."""
        t, i, total = self.training, self.inference, self.total
        return [
            ("training", t.scheduled_g, t.optimized_g, _saved(t.scheduled_g, t.optimized_g), t.basis),
            ("inference", i.scheduled_g, i.optimized_g, _saved(i.scheduled_g, i.optimized_g), i.basis),
            ("total", total.scheduled_g, total.optimized_g, total.saved_g, ""),
        ]

    @property
    def saved_text(self) -> str:
        total = self.total
        if self.savings is not None and self.savings.total is not None:
            return self.savings.total.text
        return "n/a" if total.saved_g is None else f"{total.saved_g:,.4g} g ({total.saved_percent:.1f} %)"

    def saving(self, part: str) -> Saving | None:
        """The :class:`Saving` of ``training``, ``inference`` or ``total`` (None when unavailable)."""
        return None if self.savings is None else getattr(self.savings, part)

    @property
    def accuracy_given_up_text(self) -> str:
        points = self.total.accuracy_given_up_points
        if points is None:
            return "n/a"
        verdict = self.total.accuracy_verdict
        noise = " (no significant difference)" if verdict == "no significant difference" else ""
        if abs(points) < 5e-7:
            return "none (same accuracy)"
        shown = f"{abs(points):.2f}" if abs(points) < 10 else f"{abs(points):.1f}"  # 3 significant figures
        if points > 0:
            return f"{shown} points{noise}"
        return f"none (the selected variant is {shown} points more accurate{noise.replace(' (', '; ').rstrip(')')})"

    @property
    def comparison_text(self) -> str | None:
        """``baseline X (accuracy a) -> selected Y (accuracy b); accuracy given up: ...``."""
        b, s = self.inference.baseline, self.inference.selected
        if b is None or s is None:
            return None
        return (f"baseline {b.name} (accuracy {b.accuracy:.4f}) -> selected {s.name} (accuracy {s.accuracy:.4f}); "
                f"accuracy given up: {self.accuracy_given_up_text}")

    def markdown(self) -> str:
        def g(value):
            return "n/a" if value is None else f"{value:,.4g} g"

        lines = ["# Sustainability report", "", f"**Saved:** {self.saved_text}; **accuracy given up:** "
                 f"{self.accuracy_given_up_text}", "", "| | scheduled | optimized | saved | basis |", "|---|---|---|---|---|"]
        lines += [f"| {p} | {g(a)} | {g(b)} | "
                  f"{_cell(self.saving(p).text) if self.saving(p) is not None else g(c)} | {_cell(d)} |"
                  for p, a, b, c, d in self.rows()]
        lines += [""] + [f"> {c}" for c in self.caveats]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- carbon budgets

#: What an entry of the budget ledger records (``action`` says which step of it).
LEDGER_KINDS = ("limit", "transfer", "exception", "decision", "reservation", "settlement", "release", "board")


def grams_text(value: float) -> str:
    """``1,250 g``, ``12.5 g``, ``0.00312 g``: grams for people."""
    if value != 0 and abs(value) < 1:
        return f"{value:.3g} g"
    return f"{value:,.2f}".rstrip("0").rstrip(".") + " g"


@dataclass(frozen=True)
class LedgerEntry(_Record):
    """One append-only entry of the carbon-budget ledger: what happened, to whom, by whom, when.

    ``kind`` is one of :data:`LEDGER_KINDS`; ``action`` the step (``requested``, ``approved``,
    ``rejected`` for exceptions, ``released`` or ``expired`` for releases, ``set``, ``granted``,
    ``refused``, ...). ``detail`` holds the rest (tier, reasons, the reason given).
    """

    SCHEMA: ClassVar[str] = "greenkfp.ledger_entry/v1"
    _CHOICES: ClassVar[dict] = {"kind": LEDGER_KINDS}

    id: int
    kind: str
    action: str
    at: str
    actor: str
    team: str | None = None
    period: str | None = None
    run_id: str | None = None
    amount_g: float | None = None
    to_team: str | None = None
    pipeline: str | None = None
    ref_id: int | None = None
    expires_at: str | None = None
    detail: dict = field(default_factory=dict)

    def text(self) -> str:
        """One line: ``#12 2026-12-01T09:00:00Z alice reservation granted team=ml 2026-12 run=r1 100 g``."""
        parts = [f"#{self.id}", self.at, self.actor, self.kind, self.action]
        subjects = (("team", self.team), ("to", self.to_team), ("period", self.period), ("run", self.run_id),
                    ("ref", self.ref_id), ("member", self.detail.get("member")))
        parts += [f"{key}={value}" for key, value in subjects if value is not None]
        if self.amount_g is not None:
            parts.append(grams_text(self.amount_g))
        return " ".join(str(part) for part in parts)


@dataclass(frozen=True)
class ExceptionGrant(_Record):
    """A review-board exception: a one-off allowance for a team (or one run) to spend beyond its
    remaining budget by up to ``amount_g`` until ``expires_at``. ``id`` is the request's entry id."""

    SCHEMA: ClassVar[str] = "greenkfp.budget_exception/v1"
    _CHOICES: ClassVar[dict] = {"status": ("pending", "approved", "rejected", "expired")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"amount_g"})

    id: int
    team: str
    period: str
    amount_g: float
    requester: str
    reason: str
    requested_at: str
    expires_at: str
    status: str
    run_id: str | None = None
    approver: str | None = None
    decided_at: str | None = None
    decision_reason: str | None = None
    #: Grams of granted runs' spending this exception covers: fixed when each run was granted (a
    #: released or expired run's draw is given back); expiry lapses only ``amount_g - drawn_g``.
    drawn_g: float = 0.0

    @property
    def available_g(self) -> float:
        """What is left of it to spend: ``amount_g - drawn_g`` while approved and unexpired, else 0."""
        return max(self.amount_g - self.drawn_g, 0.0) if self.status == "approved" else 0.0

    @property
    def is_open(self) -> bool:
        """Pending or approved, and not expired."""
        return self.status in ("pending", "approved")

    def text(self) -> str:
        scope = f"run {self.run_id}" if self.run_id else f"team {self.team}"
        who = f", by {self.approver}" if self.approver else ""
        return (f"#{self.id} {self.status}{who}: {grams_text(self.amount_g)} for {scope} in {self.period} until "
                f"{self.expires_at} (requested by {self.requester}: {self.reason})")


@dataclass(frozen=True)
class BudgetStatus(_Record):
    """A team's budget for one month, derived from the ledger's entries at ``as_of``.

    ``limit_g`` is the limit as set plus the transfers in, less the transfers out
    (``transferred_g``, net); ``remaining_g = limit_g + excepted_g - reserved_g - settled_g``
    (negative after an overdraft), where ``excepted_g`` is the spending that approved exceptions
    cover (each grant's draw on them, fixed when it was granted: a run exception's spending never
    counts against the team, and an exception's expiry lapses only its unused part).
    ``reserved_g`` counts the granted reservations neither settled, released nor
    expired. ``exception_g`` is what is left of the open approved team-wide exceptions; ``overdraft_g`` what the
    soft tier may overdraw (``limit_g x overdraft_percent / 100``; 0 on the hard tier).
    ``exceptions`` lists the open (pending or approved, unexpired) exceptions.
    """

    SCHEMA: ClassVar[str] = "greenkfp.budget_status/v1"
    _CHOICES: ClassVar[dict] = {"tier": ("hard", "soft")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"reserved_g", "settled_g", "overdraft_percent", "overdraft_g",
                                                    "exception_g", "excepted_g"})

    team: str
    period: str
    tier: str
    limit_g: float
    reserved_g: float
    settled_g: float
    remaining_g: float
    overdraft_percent: float
    as_of: str
    transferred_g: float = 0.0
    exception_g: float = 0.0
    overdraft_g: float = 0.0
    exceptions: tuple[ExceptionGrant, ...] = ()
    excepted_g: float = 0.0
    units: dict = field(default_factory=lambda: {"emissions": "g CO2eq"})

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for a table, in reading order."""
        g = grams_text
        tier = self.tier + (f", overdraft up to {self.overdraft_percent:g} % ({g(self.overdraft_g)})"
                            if self.tier == "soft" else "")
        rows = [("team", self.team), ("period", f"{self.period} (UTC)"), ("tier", tier),
                ("limit_g", g(self.limit_g) + (f" (transfers {self.transferred_g:+,g} g)" if self.transferred_g
                                               else "")),
                ("reserved_g", g(self.reserved_g)), ("settled_g", g(self.settled_g)),
                ("remaining_g", g(self.remaining_g))]
        if self.exception_g:
            rows.append(("approved exceptions", g(self.exception_g)))
        rows.append(("open exceptions", "\n".join(e.text() for e in self.exceptions) or "none"))
        return rows


@dataclass(frozen=True)
class Reservation(_Record):
    """The ledger's answer to a reservation request: the budget decision of one run.

    ``amount_g`` is the estimate asked for; ``remaining_g`` the team's remaining budget once the
    decision was taken (the reservation deducted when granted). ``replayed`` is True when the
    answer is the one recorded for an earlier request with the same ``run_id``.
    ``overdraft_used_g`` is the part of the grant beyond the remaining budget and the approved
    exceptions: such a grant has ``review_required``.
    """

    SCHEMA: ClassVar[str] = "greenkfp.budget_decision/v1"
    _CHOICES: ClassVar[dict] = {"tier": ("hard", "soft")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"amount_g", "overdraft_used_g"})

    granted: bool
    run_id: str
    team: str
    period: str
    amount_g: float
    remaining_g: float
    review_required: bool
    reasons: tuple[str, ...]
    replayed: bool
    decided_at: str
    tier: str
    overdraft_used_g: float = 0.0
    expires_at: str | None = None
    pipeline: str = ""
    decision_id: int | None = None

    def text(self) -> str:
        """``granted 100 g for run r1 (team ml, 2026-12); remaining 900 g``, then the reasons."""
        verdict = "granted" if self.granted else "refused"
        replay = " (replayed: the answer first given to this run id)" if self.replayed else ""
        review = "; review required" if self.review_required else ""
        return (f"{verdict} {grams_text(self.amount_g)} for run {self.run_id} (team {self.team}, {self.period}); "
                f"remaining {grams_text(self.remaining_g)}{review}{replay}")


# --------------------------------------------------------------------------- run facts and the audit baseline

#: The levers a saving is attributed to: the carbon gate's time shifting, the selection's choice
#: of model, quantization, and serving autoscaling.
LEVERS = ("time_shifting", "model_selection", "quantization", "autoscaling")
#: The largest gram quantity anywhere (a limit, an estimate, an actual, a saving ...): 1e15 g = 1 Gt
#: CO2eq, beyond any team's month; sums of such figures stay finite. The budget ledger's bound
#: (``greenkfp.components.governance.errors`` re-exports it): defined here, where the run facts
#: check their savings against it, as records import nothing of the governance module.
MAX_GRAMS = 1e15
_MONTH_TEXT = "a calendar month YYYY-MM"


def _is_month(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isdigit():
        return False
    return 1970 <= int(value[:4]) and 1 <= int(value[5:]) <= 12


def _check_interval(figure: IntervalFigure | None, path: str, title: str, bound: float | None = None) -> None:
    """``figure`` a 95 % interval around its estimate (low <= estimate <= high), each figure at
    most ``bound`` in size when given; else an error naming the field and the value."""
    if figure is None:
        return
    if bound is not None:
        for name in ("estimate", "low", "high"):
            if abs(getattr(figure, name)) > bound:
                raise RecordError(title, _join(path, name), f"must be from {-bound:g} to {bound:g} g (the ledger's "
                                                            "bound)", getattr(figure, name))
    if not figure.low <= figure.high:
        raise RecordError(title, path, "must have low <= high", figure.to_dict())
    if not figure.low <= figure.estimate <= figure.high:
        raise RecordError(title, _join(path, "estimate"), f"must lie in its interval [{figure.low:g}, "
                                                          f"{figure.high:g}]", figure.estimate)


@dataclass(frozen=True)
class LeverSaving(_Part):
    """What one lever saved in a run: grams CO2eq with a 95 % interval (``saved_g`` null when the
    run has no figure for it, and ``basis`` says why), measured or modeled, and how it was had."""

    _CHOICES: ClassVar[dict] = {"lever": LEVERS, "method": ("measured", "modeled")}

    lever: str
    saved_g: IntervalFigure | None
    method: str
    basis: str


@dataclass(frozen=True)
class ModelFacts(_Part):
    """A model's business figures: accuracy (fraction 0-1, with its 95 % interval when known) and
    p95 latency (ms)."""

    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"latency_p95_ms"})

    name: str | None
    accuracy: float | None
    accuracy_interval: IntervalFigure | None = None
    latency_p95_ms: float | None = None


#: The largest run-facts file ``greenkfp budget settle --facts-json`` reads (a run's facts are a few KiB).
MAX_FACTS_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RunFacts(_Record):
    """What a finished greenkfp run reports beside its emissions, for the budget ledger's
    settlement and the audit and quarterly report: the savings by lever, the promoted model
    against its baseline, and what the carbon gate did. Made from the run's
    :class:`SustainabilityReport` by ``greenkfp.components.governance.client.run_facts``.

    ``pipeline`` is empty when the step did not know it (the ledger fills it in from the run's
    reservation). ``gate_delay_hours`` is 0 when the run ran at once. ``energy_kwh`` is the
    training fits' energy (``energy_method`` measured or modeled); ``expected_inferences`` the
    inference volume the run was priced for, when known.
    """

    SCHEMA: ClassVar[str] = "greenkfp.run_facts/v1"
    _CHOICES: ClassVar[dict] = {"gate_action": ("run_now", "wait", "refuse"),
                                "energy_method": ("measured", "modeled")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"gate_delay_hours", "energy_kwh", "expected_inferences"})

    pipeline: str
    variant: str | None
    savings: tuple[LeverSaving, ...]
    promoted: bool | None
    gate_action: str | None
    gate_refused: bool
    gate_delay_hours: float
    selected: ModelFacts | None = None
    baseline: ModelFacts | None = None
    energy_kwh: float | None = None
    energy_method: str | None = None
    expected_inferences: float | None = None

    @classmethod
    def _load_fields(cls, data: dict, path: str, title: str, owns_schema: bool = False):
        facts = super()._load_fields(data, path, title, owns_schema)
        if len(facts.pipeline) > 256 or any(ord(c) < 32 for c in facts.pipeline):
            raise RecordError(title, _join(path, "pipeline"), "must be a name of at most 256 characters without "
                                                              "control characters", facts.pipeline)
        seen = set()
        for i, saving in enumerate(facts.savings):
            if saving.lever in seen:
                raise RecordError(title, _join(path, f"savings[{i}].lever"), "names a lever already given "
                                                                             "(one saving per lever)", saving.lever)
            seen.add(saving.lever)
            _check_interval(saving.saved_g, _join(path, f"savings[{i}].saved_g"), title, MAX_GRAMS)
        for name in ("selected", "baseline"):
            model = getattr(facts, name)
            if model is None:
                continue
            if model.accuracy is not None and not 0.0 <= model.accuracy <= 1.0:
                raise RecordError(title, _join(path, f"{name}.accuracy"), "must be a fraction from 0 to 1",
                                  model.accuracy)
            _check_interval(model.accuracy_interval, _join(path, f"{name}.accuracy_interval"), title)
        if facts.gate_refused != (facts.gate_action == "refuse"):
            raise RecordError(title, _join(path, "gate_refused"), f"must be true exactly when gate_action is "
                                                                  f"'refuse' (gate_action {facts.gate_action!r})",
                              facts.gate_refused)
        if facts.gate_action in (None, "run_now", "refuse") and facts.gate_delay_hours:
            raise RecordError(title, _join(path, "gate_delay_hours"), f"must be 0 when the gate did not wait "
                                                                      f"(gate_action {facts.gate_action!r})",
                              facts.gate_delay_hours)
        return facts

    def saving(self, lever: str) -> LeverSaving | None:
        """The saving of ``lever`` (one of :data:`LEVERS`), None when the run has none for it."""
        return next((s for s in self.savings if s.lever == lever), None)

    @property
    def saved_g(self) -> float:
        """The point estimates of the savings the run has figures for, summed (grams)."""
        return sum((s.saved_g.estimate for s in self.savings if s.saved_g is not None), 0.0)


@dataclass(frozen=True)
class TeamBaseline(_Part):
    """One team's baseline: settled grams per baseline month (0 for a month without runs), their
    mean, the runs counted, and the team's budget tier (None when it has no budget)."""

    _CHOICES: ClassVar[dict] = {"tier": ("hard", "soft")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"mean_monthly_g", "runs"})

    tier: str | None
    monthly_g: dict[str, float]
    mean_monthly_g: float
    runs: int


@dataclass(frozen=True)
class ReductionTarget(_Part):
    """The reduction the programme aims at: ``reduction_percent`` below the baseline's mean
    monthly emissions by the month ``by``."""

    reduction_percent: float
    by: str


@dataclass(frozen=True)
class CloudExportSource(_Part):
    """A cloud provider's carbon export the audit read: kind, file and how many rows it held."""

    _CHOICES: ClassVar[dict] = {"kind": ("gcp_carbon_footprint", "aws_ccft")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"rows"})

    kind: str
    path: str
    rows: int


@dataclass(frozen=True)
class AuditSources(_Part):
    """Where the audit's figures come from: the ledger (its URL without a password), the KFP host
    (None when not asked) and the cloud exports."""

    ledger: str | None
    kfp_host: str | None = None
    cloud_exports: tuple[CloudExportSource, ...] = ()


@dataclass(frozen=True)
class AuditBaseline(_Record):
    """The baseline the reduction target is measured against: each team's settled emissions per
    month over the baseline ``months`` (``YYYY-MM``, UTC, ascending), written by ``greenkfp audit``.

    ``target.reduction_percent`` (default 30) applies to each team's ``mean_monthly_g`` and to
    their sum; ``target.by`` (default: 12 months after the last baseline month) is the month by
    which it should be reached.
    """

    SCHEMA: ClassVar[str] = "greenkfp.audit_baseline/v1"

    generated_at: str
    months: tuple[str, ...]
    teams: dict[str, TeamBaseline]
    target: ReductionTarget
    sources: AuditSources
    units: dict = field(default_factory=lambda: {"emissions": "g CO2eq"})

    @classmethod
    def _load_fields(cls, data: dict, path: str, title: str, owns_schema: bool = False):
        baseline = super()._load_fields(data, path, title, owns_schema)
        if not baseline.months:
            raise RecordError(title, "months", "must name at least one month", [])
        for i, month in enumerate(baseline.months):
            if not _is_month(month):
                raise RecordError(title, f"months[{i}]", f"must be {_MONTH_TEXT}", month)
        if list(baseline.months) != sorted(set(baseline.months)):
            raise RecordError(title, "months", "must be distinct and in ascending order", list(baseline.months))
        for team, figures in baseline.teams.items():
            where = f"teams[{team!r}]"
            if not team.strip() or len(team) > 128:
                raise RecordError(title, "teams", "must be keyed by team names of 1 to 128 characters", team)
            if set(figures.monthly_g) != set(baseline.months):
                raise RecordError(title, f"{where}.monthly_g", "must give every baseline month, and only those "
                                                               f"({', '.join(baseline.months)})",
                                  sorted(figures.monthly_g))
            for month, grams in figures.monthly_g.items():
                if grams < 0:
                    raise RecordError(title, f"{where}.monthly_g[{month!r}]", "must be >= 0", grams)
            mean = sum(figures.monthly_g.values()) / len(baseline.months)
            if abs(mean - figures.mean_monthly_g) > 1e-6 * max(1.0, mean):
                raise RecordError(title, f"{where}.mean_monthly_g", f"must be the mean of monthly_g ({mean:g})",
                                  figures.mean_monthly_g)
        target = baseline.target
        if not 0 < target.reduction_percent <= 100:
            raise RecordError(title, "target.reduction_percent", "must be a number > 0 and <= 100",
                              target.reduction_percent)
        if not _is_month(target.by) or target.by <= baseline.months[-1]:
            raise RecordError(title, "target.by", f"must be {_MONTH_TEXT} after the last baseline month "
                                                  f"{baseline.months[-1]}", target.by)
        ledger = baseline.sources.ledger
        if ledger is not None and _has_password(ledger):
            raise RecordError(title, "sources.ledger", "must not hold a password (write the URL redacted)",
                              "(hidden)")
        return baseline

    @property
    def mean_monthly_g(self) -> float:
        """All teams' mean monthly emissions, summed (grams)."""
        return sum(t.mean_monthly_g for t in self.teams.values())

    def target_monthly_g(self, team: str | None = None) -> float:
        """The monthly grams the target allows ``team`` (None: all teams together)."""
        base = self.mean_monthly_g if team is None else self.teams[team].mean_monthly_g
        return base * (1.0 - self.target.reduction_percent / 100.0)

    def rows(self) -> list[tuple[Any, ...]]:
        """(team, tier, grams per baseline month..., mean monthly g, runs), teams by name."""
        return [(team, t.tier or "-", *(t.monthly_g[m] for m in self.months), t.mean_monthly_g, t.runs)
                for team, t in sorted(self.teams.items())]


def _has_password(url: str) -> bool:
    """Whether a URL's authority holds a password other than a redaction (``***``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return False
    userinfo, at, _ = rest.split("/", 1)[0].rpartition("@")
    if not at or ":" not in userinfo:
        return False
    return userinfo.split(":", 1)[1] not in ("", "***", "%2A%2A%2A")


# --------------------------------------------------------------------------- the quarterly report

@dataclass(frozen=True)
class QuarterTeamMonth(_Part):
    """One team's month of the quarter: its runs and settled grams against its budget (the limit
    after transfers, the soft tier's overdraft, the board's approved exceptions) and against its
    baseline and the target trajectory. None where the ledger or the baseline has no figure."""

    _CHOICES: ClassVar[dict] = {"tier": ("hard", "soft"),
                                "status": ("within limit", "in overdraft or exception", "over allowance",
                                           "no budget")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"runs", "emissions_g", "overdraft_g", "exceptions_g"})

    team: str
    month: str
    tier: str | None
    runs: int
    emissions_g: float
    limit_g: float | None
    transferred_g: float
    overdraft_g: float
    exceptions_g: float
    allowed_g: float | None
    used_percent: float | None
    baseline_g: float | None
    trajectory_g: float | None
    status: str


@dataclass(frozen=True)
class QuarterTeam(_Part):
    """One team's quarter: runs, settled grams, its mean month against its baseline month, and
    whether that is on the target trajectory (None without a baseline)."""

    _CHOICES: ClassVar[dict] = {"tier": ("hard", "soft")}

    team: str
    tier: str | None
    runs: int
    emissions_g: float
    monthly_mean_g: float
    baseline_monthly_g: float | None
    change_percent: float | None
    required_percent: float | None
    on_track: bool | None


@dataclass(frozen=True)
class TrajectoryPoint(_Part):
    """One month on the way to the target: the path's grams (all teams) and what was emitted
    (baseline months from the baseline, quarter months from the ledger; None between them)."""

    month: str
    path_g: float
    actual_g: float | None
    kind: str


@dataclass(frozen=True)
class QuarterProgress(_Part):
    """Progress toward the reduction target, all teams together: the baseline's mean month, the
    target (``reduction_percent`` below it by ``by``), the straight path from the last baseline
    month to it, and the quarter's mean month on that path."""

    baseline_months: tuple[str, ...]
    baseline_monthly_g: float
    reduction_percent: float
    by: str
    target_monthly_g: float
    quarter_monthly_g: float
    achieved_percent: float
    required_percent: float
    on_track: bool
    trajectory: tuple[TrajectoryPoint, ...]
    #: "complete", or "in progress" when the report was made inside the quarter: then only the
    #: ``months_with_data`` months that have begun count, with data up to ``data_to`` (a date).
    state: str = "complete"
    months_with_data: int = 3
    data_to: str | None = None
    #: The verdict in words: "on track", "behind", or "in progress (2 of 3 months, data to ...)".
    status: str = ""


@dataclass(frozen=True)
class LeverTotal(_Part):
    """What one lever saved over the quarter (``team`` None: all teams): the runs' point estimates
    summed, and the interval of the sum (see :attr:`QuarterAssumptions.interval_basis`);
    ``significant`` False when that interval includes zero."""

    _CHOICES: ClassVar[dict] = {"lever": LEVERS, "method": ("measured", "modeled", "mixed", "none")}
    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"runs", "runs_without_figure", "measured_runs", "modeled_runs"})

    lever: str
    team: str | None
    runs: int
    runs_without_figure: int
    estimate_g: float | None
    low_g: float | None
    high_g: float | None
    measured_runs: int
    modeled_runs: int
    method: str
    significant: bool | None
    verdict: str
    basis: str


@dataclass(frozen=True)
class TeamImpact(_Part):
    """Business impact for one team: the promoted models against their baselines (accuracy in
    percentage points, p95 latency in ms), and the runs refused (by the budget, by the carbon
    gate) or delayed by the gate, with their delay."""

    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"runs", "promoted_runs", "accuracy_worse_runs", "budget_refused",
                                                    "gate_refused", "delayed_runs", "delay_hours_total"})

    team: str
    runs: int
    promoted_runs: int
    accuracy_change_pp_mean: float | None
    accuracy_change_pp_min: float | None
    accuracy_worse_runs: int
    latency_change_ms_mean: float | None
    latency_change_percent_mean: float | None
    budget_refused: int
    gate_refused: int
    delayed_runs: int
    delay_hours_total: float
    delay_hours_mean: float | None
    delay_hours_p95: float | None
    delay_hours_max: float | None
    refusal_reasons: dict[str, int]


@dataclass(frozen=True)
class BoardException(_Part):
    """An exception the review board was asked for in the quarter, as decided."""

    id: int
    team: str
    month: str
    amount_g: float
    status: str
    requester: str
    reason: str
    approver: str | None
    decision_reason: str | None
    run_id: str | None
    requested_at: str


@dataclass(frozen=True)
class BoardTransfer(_Part):
    """Budget moved between teams in the quarter, by a board member, with the reason."""

    id: int
    month: str
    from_team: str
    to_team: str
    amount_g: float
    approver: str
    reason: str
    at: str


@dataclass(frozen=True)
class TeamCost(_Part):
    """A team's total cost of ownership for the quarter: cloud cost (machine-hours x the hardware
    profile's hourly price, USD) and carbon-price exposure (settled tonnes x the carbon price,
    EUR); ``total_eur`` only when a USD/EUR rate was given."""

    _NON_NEGATIVE: ClassVar[frozenset] = frozenset({"machine_hours", "cloud_cost_usd", "runs_priced", "runs_unpriced",
                                                    "emissions_t", "carbon_exposure_eur"})

    team: str
    hardware_profile: str
    hourly_price_usd: float | None
    runs_priced: int
    runs_unpriced: int
    machine_hours: float
    cloud_cost_usd: float | None
    emissions_t: float
    carbon_exposure_eur: float
    saved_t: float
    avoided_exposure_eur: float
    carbon_share_percent: float | None = None
    total_eur: float | None = None


@dataclass(frozen=True)
class QuarterAssumptions(_Part):
    """Every price, rate and method the report's figures rest on, with its source."""

    carbon_price_eur_per_t: float
    carbon_price_source: str
    usd_per_eur: float | None
    usd_per_eur_source: str
    hardware: dict[str, dict]
    machine_hours_basis: str
    interval_basis: str
    emissions_basis: str


@dataclass(frozen=True)
class QuarterSources(_Part):
    """Where the figures come from: the ledger (URL without a password) and the audit baseline."""

    ledger: str
    baseline: str
    baseline_generated_at: str
    settled_runs: int
    runs_with_facts: int


@dataclass(frozen=True)
class QuarterlyReport(_Record):
    """The quarterly sustainability report's figures for leadership (``greenkfp report
    quarterly``): emissions per team and month against budget, baseline and target; savings by
    lever with intervals; business impact; the review board's exceptions and transfers; total
    cost of ownership. Computed by ``greenkfp.components.governance.quarterly``; rendered as
    HTML, CSV and a Markdown summary by its ``render`` module. Grams of CO2eq unless a field
    name says otherwise; months are ``YYYY-MM`` (UTC)."""

    SCHEMA: ClassVar[str] = "greenkfp.quarterly_report/v1"

    quarter: str
    months: tuple[str, ...]
    generated_at: str
    sources: QuarterSources
    team_months: tuple[QuarterTeamMonth, ...]
    teams: tuple[QuarterTeam, ...]
    progress: QuarterProgress
    savings: tuple[LeverTotal, ...]
    savings_by_team: tuple[LeverTotal, ...]
    impact: tuple[TeamImpact, ...]
    exceptions: tuple[BoardException, ...]
    transfers: tuple[BoardTransfer, ...]
    costs: tuple[TeamCost, ...]
    assumptions: QuarterAssumptions
    units: dict = field(default_factory=lambda: {"emissions": "g CO2eq", "cost": "USD (cloud), EUR (carbon)",
                                                 "latency": "ms", "accuracy": "percentage points", "delay": "hours"})
    #: What the reader must know to read the figures right: teams of the baseline without runs
    #: this quarter, teams without a baseline (left out of the target), baselines of 0 g.
    notes: tuple[str, ...] = ()

    @classmethod
    def _load_fields(cls, data: dict, path: str, title: str, owns_schema: bool = False):
        report = super()._load_fields(data, path, title, owns_schema)
        if len(report.months) != 3 or not all(_is_month(m) for m in report.months):
            raise RecordError(title, "months", f"must be the quarter's three months ({_MONTH_TEXT})",
                              list(report.months))
        if _has_password(report.sources.ledger):
            raise RecordError(title, "sources.ledger", "must not hold a password (write the URL redacted)", "(hidden)")
        return report

    @property
    def emissions_g(self) -> float:
        """All teams' settled grams in the quarter."""
        return sum(t.emissions_g for t in self.teams)

    def lever(self, lever: str) -> LeverTotal | None:
        """The all-teams total of ``lever``."""
        return next((s for s in self.savings if s.lever == lever), None)
