"""Choose the model to promote: constraints, then the Pareto front, then a selection rule.

:func:`select_model` takes candidate models with their figures and returns a
:class:`SelectionDecision`, whose :meth:`~SelectionDecision.to_record` is the full, JSON-ready
account of the choice (schema ``greenkfp.selection/v1``): every candidate with its status and
why, the front, the normalised objectives and the rule's scores.

The steps, in order; a candidate leaves at the first step it fails, with its reason:

1. ``ineligible``: quantization marked the variant ineligible (``Candidate.eligible``).
2. ``missing_objective``: an objective is missing, None, NaN or infinite.
3. ``violates_constraints``: a :class:`Constraints` limit is broken (all broken limits are
   listed, with the values). The accuracy drop is measured against the most accurate
   candidate left after steps 1 and 2. Feasibility is judged on the point estimates; where a
   figure has a 95 % interval, every check (kept or broken) records whether the decision is
   *within the noise* (``within_noise``): the limit is met but the interval crosses it, or
   broken but the interval reaches back inside. The reason then says so.
4. ``dominated``: another candidate left is at least as good in every objective and better in
   one (the record names the front members that dominate it).
5. The rule picks one member of the front (``chosen``; the others are ``front``).

Normalisation (over the front, per objective): ``(x - worst) / (best - worst)``, so 1 is the
front's best value and 0 its worst; an objective on which every front member is equal scores
1 for all. Rules, on those normalised values ``n_i`` with weights ``w_i`` (summing to 1):

* ``knee`` (default): the front member closest to the ideal point (1, ..., 1), by Euclidean
  distance ``sqrt(sum (1 - n_i)^2)``. This is the "closest to ideal" definition of a knee
  (compromise programming, L2, equal weights). It is chosen over the "farthest from the
  hyperplane through the extreme points" definition because that hyperplane is undefined for
  fronts of fewer members than objectives, and both single out the same bend of a convex
  front. With one front member that member is chosen; with two, the one best on more
  objectives (a tie goes by the tie rule below).
* ``chebyshev``: smallest ``max_i w_i (1 - n_i)`` (the weighted worst shortfall from ideal).
* ``weighted_sum``: largest ``sum_i w_i n_i``.
* ``epsilon_constraint``: the best value of the ``primary`` objective (accuracy by default),
  the other objectives being held by the constraints' limits: "the most accurate candidate
  within the limits".

Equal scores (within ``1e-9`` relative) go to the better ``primary`` objective value, then to
the name in ascending order, so the choice never depends on the input order. Then the tie rule
on the noise below applies to that pick.

Noise (:mod:`.intervals`): an objective may carry a 95 % interval (metrics ``<name>_low`` and
``<name>_high``, as the interleaved benchmark reports them). Dominance in step 4 then holds
only beyond the intervals, and after a rule has scored the front, every front member whose
intervals overlap the pick's on every objective the rule scores is tied with it; ties go to
fewer operations per inference (``macs + tree_comparisons``), then the smaller model, then the
higher accuracy, then the name (:data:`.intervals.TIE_BREAK`); the reason names the members
tied with the pick and what decided. This holds for every rule.
Finally the choice is never significantly worse on energy (``energy_per_inference_kwh``, else
``sci``) than the baseline, the most accurate fp32 variant, unless the user's weights put no
weight on it. When the baseline is off the front (excluded by the constraints, or dominated) and
every front member is significantly worse than it, the pick stands and the reason and
``energy_guard`` say so. The record says per objective whether the choice is significantly
better than the baseline (``significance``). Exact figures have zero-width intervals, so
without intervals all of this is the exact rule.

When no candidate is left after step 3, nothing may be promoted: ``on_none="fail"`` raises
:class:`NoEligibleCandidateError` (which carries the record), ``on_none="block"`` returns a
decision with ``chosen=None`` and ``promote=False``.

Accuracy is a fraction between 0 and 1; accuracy drops are in percentage points
(``(best - accuracy) x 100``), as in the quantization report. A malformed interval (one end
only, not finite, ``low > high``, or not holding its figure) raises :class:`SelectionError`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from ..records import SelectionRecord
from ..stats import compare
from .intervals import TIE_BREAK, TIE_KEY_PARTS, SelectionError, interval, interval_front, tie_key, tied, verdict
from .pareto import DIRECTIONS

RECORD_SCHEMA = SelectionRecord.SCHEMA

#: Metric names the defaults and the constraints use.
ACCURACY = "accuracy"  # fraction, 0 to 1
LATENCY_P95 = "latency_p95_ms"  # milliseconds
SCI = "sci"  # g CO2eq per functional unit
TRAINING_EMISSIONS = "training_emissions_g"  # g CO2eq
ENERGY = "energy_per_inference_kwh"  # kWh per inference

RULES = ("knee", "chebyshev", "weighted_sum", "epsilon_constraint")
Rule = Literal["knee", "chebyshev", "weighted_sum", "epsilon_constraint"]
OnNone = Literal["fail", "block"]
#: Scores this close (relative) are ties.
TIE_RTOL = 1e-9
# Accuracy drops within this many points of the limit count as within it (float round-off).
_POINTS_EPS = 1e-9
_STATUS_ORDER = ("chosen", "front", "dominated", "violates_constraints", "missing_objective", "ineligible")


class NoEligibleCandidateError(RuntimeError):
    """No candidate satisfies the eligibility rule, the objectives' presence and the constraints.

    ``record`` is the decision record (``promote`` false), so a caller can still write it.
    """

    def __init__(self, message: str, record: SelectionRecord | None = None):
        super().__init__(message)
        self.record = record


# --- inputs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Objective:
    """One objective: a metric name and whether larger (``max``) or smaller (``min``) is better."""

    name: str
    direction: Literal["max", "min"]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SelectionError(f"Objective name must be a non-empty string; got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise SelectionError(f"Objective {self.name!r}: direction must be 'max' or 'min'; got {self.direction!r}")

    @classmethod
    def parse(cls, value: Objective | str | Mapping | Sequence) -> Objective:
        """From an Objective, ``"name:max"``, ``{"name": ..., "direction": ...}`` or ``(name, direction)``."""
        if isinstance(value, Objective):
            return value
        if isinstance(value, str):
            name, sep, direction = value.rpartition(":")
            if not sep:
                raise SelectionError(f"objective must look like 'name:max' or 'name:min'; got {value!r}")
            return cls(name.strip(), direction.strip())
        if isinstance(value, Mapping):
            unknown = set(value) - {"name", "direction"}
            if unknown or "name" not in value or "direction" not in value:
                raise SelectionError(f"objective must have exactly the keys 'name' and 'direction'; got {dict(value)!r}")
            return cls(value["name"], value["direction"])
        if isinstance(value, Sequence) and len(value) == 2:
            return cls(value[0], value[1])
        raise SelectionError(f"objective must be an Objective, 'name:direction', a mapping or a pair; got {value!r}")

    def to_dict(self) -> dict:
        return {"name": self.name, "direction": self.direction}


DEFAULT_OBJECTIVES = (Objective(ACCURACY, "max"), Objective(LATENCY_P95, "min"), Objective(SCI, "min"))


def as_objectives(objectives: Iterable) -> tuple[Objective, ...]:
    """Parse a list of objectives (see :meth:`Objective.parse`); names must be distinct."""
    if isinstance(objectives, (str, Objective, Mapping)):
        objectives = [objectives]
    parsed = tuple(Objective.parse(o) for o in objectives)
    if not parsed:
        raise SelectionError("objectives must name at least one objective; got none")
    names = [o.name for o in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SelectionError(f"objectives must have distinct names; {', '.join(map(repr, duplicates))} repeated")
    return parsed


def _optional_limit(value, name: str, lower: float = 0.0, upper: float = math.inf) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise SelectionError(f"{name} must be a finite number or None; got {value!r}")
    if not lower <= value <= upper:
        bound = f">= {lower:g}" if upper == math.inf else f"between {lower:g} and {upper:g}"
        raise SelectionError(f"{name} must be {bound}; got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Constraints:
    """Limits a candidate must meet before the front is computed. None means no limit.

    A limit is met or broken on the point estimate; where the figure has a 95 % interval that
    says otherwise, the decision's record marks it ``within_noise`` (see :func:`select_model`).

    Args:
        min_accuracy: Lowest acceptable ``accuracy`` (fraction, 0 to 1).
        max_accuracy_drop_points: Largest acceptable drop in ``accuracy`` against the most
            accurate eligible candidate, in percentage points (1.0 = one point).
        max_latency_ms: Largest acceptable ``latency_p95_ms``.
        max_sci: Largest acceptable ``sci`` (g CO2eq per functional unit).
    """

    min_accuracy: float | None = None
    max_accuracy_drop_points: float | None = None
    max_latency_ms: float | None = None
    max_sci: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_accuracy", _optional_limit(self.min_accuracy, "min_accuracy", 0.0, 1.0))
        object.__setattr__(self, "max_accuracy_drop_points",
                           _optional_limit(self.max_accuracy_drop_points, "max_accuracy_drop_points", 0.0, 100.0))
        object.__setattr__(self, "max_latency_ms", _optional_limit(self.max_latency_ms, "max_latency_ms"))
        object.__setattr__(self, "max_sci", _optional_limit(self.max_sci, "max_sci"))

    @property
    def uses_accuracy(self) -> bool:
        return self.min_accuracy is not None or self.max_accuracy_drop_points is not None

    def to_dict(self) -> dict:
        return {
            "min_accuracy": self.min_accuracy,
            "max_accuracy_drop_points": self.max_accuracy_drop_points,
            "max_latency_ms": self.max_latency_ms,
            "max_sci": self.max_sci,
        }


def _metric_value(value, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SelectionError(f"{where} must be a number or None; got {value!r} ({type(value).__name__})")
    return float(value)


@dataclass(frozen=True)
class Candidate:
    """One model that may be promoted.

    Args:
        name: Unique name (a variant name such as ``int8_dynamic``, or ``model-a/fp32``).
        model_uri: Where the model is (path or URI); the promoted Model artifact points there.
        metrics: Metric name -> number (None or NaN for missing), e.g. ``accuracy``,
            ``latency_p95_ms``, ``sci``, ``training_emissions_g``.
        eligible: False when quantization ruled the variant out.
        eligibility_reason: Why (shown in the record).
        metadata: Anything else to carry into the record (JSON-ready values).
    """

    name: str
    model_uri: str | None = None
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    eligible: bool = True
    eligibility_reason: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SelectionError(f"candidate name must be a non-empty string; got {self.name!r}")
        if self.model_uri is not None and not isinstance(self.model_uri, str):
            raise SelectionError(f"candidate {self.name!r}: model_uri must be a string or None; got {self.model_uri!r}")
        if not isinstance(self.eligible, (bool, np.bool_)):
            raise SelectionError(f"candidate {self.name!r}: eligible must be True or False; got {self.eligible!r}")
        if not isinstance(self.metrics, Mapping):
            raise SelectionError(f"candidate {self.name!r}: metrics must be a mapping; got {type(self.metrics).__name__}")
        metrics = {}
        for key, value in self.metrics.items():
            if not isinstance(key, str):
                raise SelectionError(f"candidate {self.name!r}: metric names must be strings; got {key!r}")
            metrics[key] = _metric_value(value, f"candidate {self.name!r}: metrics[{key!r}]")
        object.__setattr__(self, "metrics", metrics)
        object.__setattr__(self, "eligible", bool(self.eligible))
        object.__setattr__(self, "metadata", dict(self.metadata))

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Candidate:
        """From a plain record such as a JSON object.

        ``name`` (or ``variant``), ``model_uri`` (or ``uri`` / ``path``), ``eligible``,
        ``eligibility_reason``, an optional ``metrics`` mapping; every other numeric top-level
        field is a metric too, and the remaining fields go to ``metadata``.
        """
        if not isinstance(record, Mapping):
            raise SelectionError(f"a candidate record must be a mapping; got {type(record).__name__}: {record!r}")
        data = dict(record)
        name = data.pop("name", None)
        if name is None:
            name = data.pop("variant", None)
        uri = next((data.pop(k) for k in ("model_uri", "uri", "path") if data.get(k) is not None), None)
        for k in ("model_uri", "uri", "path"):
            data.pop(k, None)
        eligible = data.pop("eligible", True)
        reason = data.pop("eligibility_reason", None)
        metrics = dict(data.pop("metrics", None) or {})
        data.pop("schema", None)
        metadata = {}
        for key, value in data.items():
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                metrics.setdefault(key, value)
            else:
                metadata[key] = value
        return cls(name=name, model_uri=uri, metrics=metrics, eligible=eligible, eligibility_reason=reason,
                   metadata=metadata)

    def value(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return None if value is None or math.isnan(value) else value


def as_candidates(candidates: Iterable[Candidate | Mapping]) -> tuple[Candidate, ...]:
    """Candidates from :class:`Candidate` objects or records; names must be distinct."""
    if isinstance(candidates, (Mapping, Candidate, str)):
        raise SelectionError(f"candidates must be a list of candidates; got a single {type(candidates).__name__}")
    if not isinstance(candidates, Iterable):
        raise SelectionError(f"candidates must be a list of candidates; got {type(candidates).__name__}: "
                             f"{candidates!r}")
    parsed = tuple(c if isinstance(c, Candidate) else Candidate.from_record(c) for c in candidates)
    names = [c.name for c in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SelectionError(f"candidate names must be distinct; {', '.join(map(repr, duplicates))} repeated")
    return parsed


def normalise_weights(weights, objectives: Sequence[Objective], rule: str) -> dict[str, float] | None:
    """Weights per objective name, summing to 1 (None: equal weights for the weighted rules).

    ``weights`` is a mapping name -> weight (absent objectives weigh 0) or a sequence in the
    objectives' order. Weights apply to ``chebyshev`` and ``weighted_sum`` only. They are divided
    by the largest before they are summed, so weights near the float maximum (``1e308`` each)
    keep their ratios instead of overflowing the sum; a weight too small to register beside the
    largest becomes 0.
    """
    names = [o.name for o in objectives]
    if rule not in ("chebyshev", "weighted_sum"):
        if weights is not None:
            raise SelectionError(f"weights apply to the 'chebyshev' and 'weighted_sum' rules only; got weights with rule {rule!r}")
        return None
    if weights is None:
        return {n: 1.0 / len(names) for n in names}
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in names]
        if unknown:
            raise SelectionError(f"weights name unknown objective(s) {unknown!r}; objectives are {names!r}")
        raw = {n: weights.get(n, 0.0) for n in names}
    elif isinstance(weights, Sequence) and not isinstance(weights, str):
        if len(weights) != len(names):
            raise SelectionError(f"weights must have one entry per objective ({len(names)}: {names!r}); got {list(weights)!r}")
        raw = dict(zip(names, weights))
    else:
        raise SelectionError(f"weights must be a mapping of objective name to weight, or a list; got {weights!r}")
    for n, w in raw.items():
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise SelectionError(f"weights[{n!r}] must be a finite number >= 0; got {w!r}")
    top = float(max(raw.values()))
    if top <= 0:
        raise SelectionError(f"weights must not all be zero; got {raw!r}")
    scaled = {n: float(w) / top for n, w in raw.items()}  # each in [0, 1]: the sum cannot overflow
    total = sum(scaled.values())
    normalised = {n: w / total for n, w in scaled.items()}
    if not all(math.isfinite(w) for w in normalised.values()) or not any(normalised.values()):
        raise SelectionError(f"weights could not be normalised to finite shares summing to 1; got {raw!r}")
    return normalised


# --- the decision ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assessment:
    """What happened to one candidate.

    ``status`` is one of ``chosen``, ``front``, ``dominated``, ``violates_constraints``,
    ``missing_objective``, ``ineligible``. ``normalized`` and ``score`` exist for front members.
    ``constraint_checks`` holds every limit applied to the candidate, kept or broken, with
    ``met`` and ``within_noise`` (see :func:`_check_constraints`); ``violations`` the broken ones.
    """

    candidate: Candidate
    status: str
    reasons: tuple[str, ...] = ()
    violations: tuple[dict, ...] = ()
    constraint_checks: tuple[dict, ...] = ()
    dominated_by: tuple[str, ...] = ()
    normalized: Mapping[str, float] | None = None
    score: float | None = None

    @property
    def name(self) -> str:
        return self.candidate.name

    def to_dict(self) -> dict:
        c = self.candidate
        return {
            "name": c.name,
            "model_uri": c.model_uri,
            "status": self.status,
            "on_front": self.status in ("chosen", "front"),
            "eligible": c.eligible,
            "eligibility_reason": c.eligibility_reason,
            "reasons": list(self.reasons),
            "violations": [dict(v) for v in self.violations],
            "constraint_checks": [dict(v) for v in self.constraint_checks] or None,
            "dominated_by": list(self.dominated_by),
            "metrics": {k: _finite(v) for k, v in c.metrics.items()},
            "normalized": None if self.normalized is None else {k: _finite(v) for k, v in self.normalized.items()},
            "score": _finite(self.score),
            "metadata": dict(c.metadata),
        }


def _finite(value):
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value


@dataclass(frozen=True)
class SelectionDecision:
    """The outcome of :func:`select_model`. ``chosen`` is None when nothing may be promoted."""

    chosen: Candidate | None
    promote: bool
    reason: str
    rule: str
    objectives: tuple[Objective, ...]
    constraints: Constraints
    weights: Mapping[str, float] | None
    primary: str
    assessments: tuple[Assessment, ...]
    normalization: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    reference: Mapping[str, Any] | None = None
    baseline: Candidate | None = None
    energy_guard: str | None = None
    #: when the tie rule chose another front member than the rule's pick: the pick, the member
    #: chosen, the members tied with the pick, the objectives, what decided (see _tie_facts)
    tie_break_choice: Mapping[str, Any] | None = None

    def significance(self) -> dict:
        """Per objective (and energy): the chosen variant against the baseline (the most
        accurate fp32), each as estimate and 95 % interval, and the verdict: ``better``,
        ``worse`` or ``no significant difference``."""
        if self.chosen is None or self.baseline is None:
            return {}
        out = {}
        names = [(o.name, o.direction) for o in self.objectives]
        if all(n != ENERGY for n, _ in names):
            names.append((ENERGY, "min"))
        for name, direction in names:
            if self.chosen.value(name) is None or self.baseline.value(name) is None:
                continue
            a, b = interval(self.chosen.metrics, name), interval(self.baseline.metrics, name)
            out[name] = {"direction": direction, "chosen": a.to_dict(), "baseline": b.to_dict(),
                         "verdict": verdict(a, b, direction),
                         "significantly_better": verdict(a, b, direction) == "better"}
        return out

    @property
    def front(self) -> tuple[str, ...]:
        """Names of the front members, in input order."""
        return tuple(a.name for a in self.assessments if a.status in ("chosen", "front"))

    @property
    def excluded(self) -> tuple[Assessment, ...]:
        return tuple(a for a in self.assessments if a.status not in ("chosen", "front"))

    def assessment(self, name: str) -> Assessment:
        for a in self.assessments:
            if a.name == name:
                return a
        raise KeyError(name)

    def to_record(self) -> SelectionRecord:
        """The decision record (non-finite numbers become None)."""
        counts = {status: 0 for status in _STATUS_ORDER}
        for a in self.assessments:
            counts[a.status] += 1
        chosen = self.chosen
        return SelectionRecord.from_dict({
            "schema": RECORD_SCHEMA,
            "promote": self.promote,
            "chosen": None if chosen is None else chosen.name,
            "chosen_model_uri": None if chosen is None else chosen.model_uri,
            "chosen_metrics": None if chosen is None else {k: _finite(v) for k, v in chosen.metrics.items()},
            "reason": self.reason,
            "rule": self.rule,
            "rule_definition": _RULE_DEFINITIONS[self.rule],
            "score_direction": self._score_direction(),
            "tie_break": f"equal scores (within {TIE_RTOL:g} relative) go to the better {self.primary}, then the "
                         f"name ascending; then {TIE_BREAK}",
            "baseline": None if self.baseline is None else self.baseline.name,
            "significance": self.significance() or None,
            "energy_guard": self.energy_guard,
            "tie_break_choice": None if self.tie_break_choice is None else dict(self.tie_break_choice),
            "dominance": "beyond the 95 % intervals: better on at least one objective (intervals apart), worse "
                         "on none; overlapping intervals are ties (exact figures have zero-width intervals)",
            "weights": None if self.weights is None else dict(self.weights),
            "primary": self.primary,
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": self.constraints.to_dict(),
            "accuracy_reference": None if self.reference is None else dict(self.reference),
            "normalization": {k: {kk: _finite(vv) for kk, vv in v.items()} for k, v in self.normalization.items()},
            "front": list(self.front),
            "scores": {a.name: _finite(a.score) for a in self.assessments if a.score is not None},
            "excluded": [
                {"name": a.name, "status": a.status, "reasons": list(a.reasons)} for a in self.excluded
            ],
            "counts": {"candidates": len(self.assessments), **counts},
            "candidates": [a.to_dict() for a in self.assessments],
            "units": {ACCURACY: "fraction (0-1)", "accuracy_drop": "percentage points", LATENCY_P95: "ms",
                      SCI: "g CO2eq per functional unit", TRAINING_EMISSIONS: "g CO2eq"},
        })

    def _score_direction(self) -> str:
        if self.rule == "weighted_sum":
            return "higher is better"
        if self.rule in ("knee", "chebyshev"):
            return "lower is better"
        direction = next(o.direction for o in self.objectives if o.name == self.primary)
        return f"the {self.primary} value, {'higher' if direction == 'max' else 'lower'} is better"

    def metrics(self) -> dict[str, float]:
        """Numbers for a KFP ``Metrics`` artifact (the chosen model's objectives prefixed ``chosen_``)."""
        out = {
            "promote": 1.0 if self.promote else 0.0,
            "candidates": float(len(self.assessments)),
            "front_size": float(len(self.front)),
            "excluded": float(len(self.excluded)),
        }
        if self.chosen is not None:
            for o in self.objectives:
                value = self.chosen.value(o.name)
                if value is not None and math.isfinite(value):
                    out[f"chosen_{o.name}"] = value
            score = self.assessment(self.chosen.name).score
            if score is not None and math.isfinite(score):
                out["chosen_score"] = score
        return out

    def artifact_metadata(self) -> dict:
        """Metadata for the KFP ``Model`` artifact of the promoted model."""
        if self.chosen is None:
            return {"promote": False, "rule": self.rule}
        return {
            **{k: v for k, v in self.chosen.metadata.items() if isinstance(v, (str, int, float, bool)) or v is None},
            "promote": self.promote,
            "selected": self.chosen.name,
            "source_uri": self.chosen.model_uri,
            "rule": self.rule,
            **{o.name: _finite(self.chosen.value(o.name)) for o in self.objectives},
        }


_RULE_DEFINITIONS = {
    "knee": "front member closest to the ideal point: min sqrt(sum_i (1 - n_i)^2), n_i normalised so 1 = front's best",
    "chebyshev": "min max_i w_i (1 - n_i), n_i normalised so 1 = front's best",
    "weighted_sum": "max sum_i w_i n_i, n_i normalised so 1 = front's best",
    "epsilon_constraint": "best primary objective among the front members within the constraints' limits",
}


# --- the steps -------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    return "missing" if value is None else f"{value:.6g}"


def _check_constraints(c: Candidate, constraints: Constraints, best_accuracy: float | None) -> list[dict]:
    """Every limit applied to ``c``, kept or broken: ``{constraint, metric, limit, value, low,
    high, met, within_noise}``, and ``message`` for a broken one.

    ``met`` is judged on the point estimate. ``low``/``high`` are the 95 % interval of the figure
    compared (None when the figure is missing); ``within_noise`` is true when the limit is met
    but the interval crosses it, or broken but the interval reaches back inside (never for an
    exact figure). The accuracy drop's interval is the candidate's accuracy interval against the
    most accurate candidate's point value.
    """
    checks = []

    def check(constraint: str, metric: str, limit: float, value: float | None, figure, upper: bool,
              message: str, slack: float = 0.0):
        if value is None:
            met, noise, low, high = False, False, None, None
        else:
            low, high = figure
            met = value <= limit + slack if upper else value >= limit
            if upper:
                noise = high > limit + slack if met else low <= limit + slack
            else:
                noise = low < limit if met else high >= limit
        entry = {"constraint": constraint, "metric": metric, "limit": limit, "value": value, "low": low,
                 "high": high, "met": met, "within_noise": noise}
        if not met:
            if noise:
                message += f" (within the noise: the 95 % interval [{low:.6g}, {high:.6g}] reaches the limit)"
            entry["message"] = message
        checks.append(entry)

    accuracy = c.value(ACCURACY)
    if accuracy is not None and not math.isfinite(accuracy):
        accuracy = None  # an infinite accuracy meets nothing: missing
    figure = None
    if accuracy is not None and constraints.uses_accuracy:
        estimate = interval(c.metrics, ACCURACY, c.name)
        figure = (estimate.low, estimate.high)
    if constraints.min_accuracy is not None:
        check("min_accuracy", ACCURACY, constraints.min_accuracy, accuracy, figure, False,
              f"{ACCURACY} {_fmt(accuracy)} < min_accuracy {constraints.min_accuracy:g}")
    if constraints.max_accuracy_drop_points is not None and best_accuracy is not None:
        drop = None if accuracy is None else 100.0 * (best_accuracy - accuracy)
        drop_figure = None if figure is None else (100.0 * (best_accuracy - figure[1]),
                                                   100.0 * (best_accuracy - figure[0]))
        check("max_accuracy_drop_points", ACCURACY, constraints.max_accuracy_drop_points, drop, drop_figure, True,
              f"accuracy drop {'missing' if drop is None else f'{drop:.3g}'} points against the most accurate "
              f"variant ({100 * best_accuracy:.3g} %) > max_accuracy_drop_points "
              f"{constraints.max_accuracy_drop_points:g}",
              slack=_POINTS_EPS)
    for limit_name, metric in (("max_latency_ms", LATENCY_P95), ("max_sci", SCI)):
        limit = getattr(constraints, limit_name)
        if limit is None:
            continue
        value = c.value(metric)
        if value is not None and not math.isfinite(value):
            value = None
        estimate = None if value is None else interval(c.metrics, metric, c.name)
        check(limit_name, metric, limit, value, None if estimate is None else (estimate.low, estimate.high), True,
              f"{metric} {_fmt(value)} > {limit_name} {limit:g}")
    return checks


def _noise_notes(assessments: Iterable[Assessment], chosen: str | None) -> list[str]:
    """Constraint decisions within the noise that mattered: the chosen candidate's kept limits and
    the excluded candidates' broken ones."""
    notes = []
    for a in assessments:
        for check in a.constraint_checks:
            if not check["within_noise"]:
                continue
            figure = f"{check['metric']} {check['value']:.6g} [{check['low']:.6g}, {check['high']:.6g}]"
            if check["constraint"] == "max_accuracy_drop_points":
                figure = f"accuracy drop {check['value']:.4g} points [{check['low']:.4g}, {check['high']:.4g}]"
            if check["met"] and a.name == chosen:
                notes.append(f"{a.name!r} meets {check['constraint']} {check['limit']:g} on the point estimate but "
                             f"its interval crosses it ({figure})")
            elif not check["met"]:
                notes.append(f"{a.name!r} breaks {check['constraint']} {check['limit']:g} on the point estimate but "
                             f"its interval reaches inside ({figure})")
    return notes


def _objective_problems(c: Candidate, objectives: Sequence[Objective]) -> list[str]:
    problems = []
    for o in objectives:
        value = c.metrics.get(o.name)
        if value is None:
            problems.append(f"objective {o.name!r} is missing")
        elif math.isnan(value):
            problems.append(f"objective {o.name!r} is NaN")
        elif math.isinf(value):
            problems.append(f"objective {o.name!r} is infinite ({value})")
    return problems


def _normalise(front: list[Candidate], objectives: Sequence[Objective]):
    """Per objective: best and worst on the front, and each member's normalised value (1 = best)."""
    table = np.array([[c.metrics[o.name] for o in objectives] for c in front], dtype=float)
    scales, normed = {}, np.ones_like(table)
    for j, o in enumerate(objectives):
        column = table[:, j]
        best, worst = (column.max(), column.min()) if o.direction == "max" else (column.min(), column.max())
        scales[o.name] = {"best": float(best), "worst": float(worst)}
        if best != worst:
            with np.errstate(over="ignore"):
                span = best - worst
            if np.isfinite(span):
                normed[:, j] = (column - worst) / span + 0.0  # + 0.0: no -0.0
            else:  # a front spanning more than the float range: halve first (exact for normal floats)
                normed[:, j] = (column * 0.5 - worst * 0.5) / (best * 0.5 - worst * 0.5) + 0.0
    return scales, normed


def _scores(rule: str, normed: np.ndarray, weights: Mapping[str, float] | None, objectives, front, primary):
    """Each front member's score and whether lower is better."""
    if rule == "knee":
        return np.sqrt(((1.0 - normed) ** 2).sum(axis=1)), True
    w = None if weights is None else np.array([weights[o.name] for o in objectives])
    if rule == "chebyshev":
        return (w * (1.0 - normed)).max(axis=1), True
    if rule == "weighted_sum":
        return (w * normed).sum(axis=1), False
    direction = next(o.direction for o in objectives if o.name == primary)
    return np.array([c.metrics[primary] for c in front]), direction == "min"


def _pick(front: list[Candidate], scores: np.ndarray, lower_better: bool, primary: str, primary_dir: str) -> int:
    """Index of the best score; ties (TIE_RTOL) go to the better primary value, then the name."""
    target = scores.min() if lower_better else scores.max()
    tol = TIE_RTOL * max(1.0, abs(float(target)))
    tied = [i for i in range(len(front)) if abs(float(scores[i]) - float(target)) <= tol]
    sign = -1.0 if primary_dir == "max" else 1.0
    return min(tied, key=lambda i: (sign * front[i].metrics[primary], front[i].name))


def _reason(rule: str, chosen: Candidate, score: float, weights, n_front: int, n_total: int, primary: str) -> str:
    excluded = n_total - n_front
    where = (f"among {n_front} front member{'s' * (n_front != 1)} of {n_total} candidate{'s' * (n_total != 1)} "
             f"({excluded} excluded or dominated)")
    if rule == "knee":
        what = f"is the knee: closest to the ideal point (distance {score:.4g} in normalised objectives)"
    elif rule == "chebyshev":
        what = f"has the smallest weighted worst shortfall ({score:.4g}; weights {_weights_text(weights)})"
    elif rule == "weighted_sum":
        what = f"has the largest weighted sum of normalised objectives ({score:.4g}; weights {_weights_text(weights)})"
    else:
        what = f"has the best {primary} ({score:.6g}) within the constraints"
    return f"{rule}: {chosen.name!r} {what} {where}"


def _weights_text(weights) -> str:
    return ", ".join(f"{k} {v:.3g}" for k, v in weights.items())


def _none_message(assessments: Sequence[Assessment]) -> str:
    if not assessments:
        return "No candidate can be promoted: no candidates were given."
    lines = [f"{a.name}: {'; '.join(a.reasons)}" for a in assessments]
    return (f"No candidate can be promoted: none of the {len(assessments)} candidate(s) is eligible, has every "
            f"objective and meets the constraints. " + " | ".join(lines))


def select_model(
    candidates: Iterable[Candidate | Mapping],
    objectives: Iterable = DEFAULT_OBJECTIVES,
    constraints: Constraints | Mapping | None = None,
    rule: Rule = "knee",
    weights: Mapping[str, float] | Sequence[float] | None = None,
    *,
    primary: str = ACCURACY,
    on_none: OnNone = "fail",
) -> SelectionDecision:
    """Choose the candidate to promote.

    Args:
        candidates: :class:`Candidate` objects or records (see :meth:`Candidate.from_record`).
        objectives: :class:`Objective` list (or ``"name:max"`` strings); default: maximise
            accuracy, minimise latency p95, minimise SCI.
        constraints: :class:`Constraints` (or a mapping of its fields); None for no limits.
        rule: ``knee``, ``chebyshev``, ``weighted_sum`` or ``epsilon_constraint``.
        weights: Per-objective weights for ``chebyshev`` and ``weighted_sum`` (default equal).
        primary: The objective ``epsilon_constraint`` optimises and ties are broken by; it
            must be one of ``objectives`` (default ``accuracy``; when accuracy is not an
            objective, give another).
        on_none: When no candidate is left: ``fail`` raises :class:`NoEligibleCandidateError`;
            ``block`` returns a decision with ``chosen=None`` and ``promote=False``.

    Returns:
        A :class:`SelectionDecision`.

    Raises:
        SelectionError: invalid arguments (the message names the argument and the value).
        NoEligibleCandidateError: nothing may be promoted and ``on_none="fail"``.
    """
    if rule not in RULES:
        raise SelectionError(f"rule must be one of {', '.join(RULES)}; got {rule!r}")
    if on_none not in ("fail", "block"):
        raise SelectionError(f"on_none must be 'fail' or 'block'; got {on_none!r}")
    objectives = as_objectives(objectives)
    names = [o.name for o in objectives]
    if primary not in names:
        raise SelectionError(f"primary must be one of the objectives {names!r}; got {primary!r}")
    if constraints is None:
        constraints = Constraints()
    elif isinstance(constraints, Mapping):
        unknown = set(constraints) - set(Constraints.__dataclass_fields__)
        if unknown:
            raise SelectionError(f"constraints has unknown field(s) {sorted(unknown)!r}; "
                                 f"known: {sorted(Constraints.__dataclass_fields__)!r}")
        constraints = Constraints(**constraints)
    elif not isinstance(constraints, Constraints):
        raise SelectionError(f"constraints must be a Constraints, a mapping or None; got {constraints!r}")
    weights = normalise_weights(weights, objectives, rule)
    candidates = as_candidates(candidates)
    for c in candidates:  # a malformed interval is an error, never quietly an exact figure
        for name in dict.fromkeys([*names, ENERGY, SCI]):
            for key in (name, f"{name}_low", f"{name}_high"):  # a record's "0.5" went to metadata: name it
                if key not in c.metrics and c.metadata.get(key) is not None:
                    value = c.metadata[key]
                    raise SelectionError(f"candidate {c.name!r}: {key} must be a number or None; got {value!r} "
                                         f"({type(value).__name__})")
            value = c.value(name)
            if value is not None and math.isfinite(value):
                interval(c.metrics, name, c.name)
    if constraints.uses_accuracy:
        for c in candidates:
            a = c.value(ACCURACY)
            if a is not None and math.isfinite(a) and not 0.0 <= a <= 1.0:
                raise SelectionError(f"candidate {c.name!r}: {ACCURACY} must be a fraction between 0 and 1 for the "
                                     f"accuracy constraints; got {a!r}")

    status: dict[str, Assessment] = {}
    # 1 and 2: eligibility, then every objective present
    complete = []
    for c in candidates:
        if not c.eligible:
            status[c.name] = Assessment(c, "ineligible", (f"not eligible: {c.eligibility_reason or 'marked ineligible'}",))
            continue
        problems = _objective_problems(c, objectives)
        if problems:
            status[c.name] = Assessment(c, "missing_objective", tuple(problems))
            continue
        complete.append(c)

    # 3: constraints; the accuracy drop counts from the most accurate complete candidate
    reference = None
    accurate = [c for c in complete if c.value(ACCURACY) is not None and math.isfinite(c.value(ACCURACY))]
    if accurate:
        top = min(accurate, key=lambda c: (-c.value(ACCURACY), c.name))
        reference = {"name": top.name, ACCURACY: top.value(ACCURACY)}
    best_accuracy = None if reference is None else reference[ACCURACY]
    allowed = []
    checks: dict[str, tuple[dict, ...]] = {}
    for c in complete:
        checks[c.name] = tuple(_check_constraints(c, constraints, best_accuracy))
        broken = tuple(b for b in checks[c.name] if not b["met"])
        if broken:
            status[c.name] = Assessment(c, "violates_constraints", tuple(b["message"] for b in broken), broken,
                                        checks[c.name])
        else:
            allowed.append(c)

    common = {"rule": rule, "objectives": objectives, "constraints": constraints, "weights": weights,
              "primary": primary, "reference": reference}
    if not allowed:
        ordered = tuple(status[c.name] for c in candidates)
        message = _none_message(ordered)
        if any(v["within_noise"] for a in ordered for v in a.violations):
            message += (" | constraints are judged on point estimates; a limit broken 'within the noise' has a 95 % "
                        "interval that reaches inside it")
        decision = SelectionDecision(None, False, message, assessments=ordered, **common)
        if on_none == "fail":
            raise NoEligibleCandidateError(message, decision.to_record())
        return decision

    # 4: the front of the allowed candidates, dominance beyond the 95 % intervals (exact
    # figures have zero-width intervals: then this is the exact Pareto front)
    front_rows, beaten = interval_front([c.metrics for c in allowed], objectives)
    on_front = set(front_rows)
    front = [c for i, c in enumerate(allowed) if i in on_front]
    for i, c in enumerate(allowed):
        if i not in on_front:
            by = tuple(allowed[j].name for j in ([j for j in beaten[i] if j in on_front] or beaten[i]))
            status[c.name] = Assessment(c, "dominated", (f"dominated by {', '.join(by)}",), dominated_by=by,
                                        constraint_checks=checks[c.name])

    # 5: normalise over the front, score, pick; then ties beyond the noise, then the energy guard
    scales, normed = _normalise(front, objectives)
    scores, lower_better = _scores(rule, normed, weights, objectives, front, primary)
    primary_dir = next(o.direction for o in objectives if o.name == primary)
    pick = _pick(front, scores, lower_better, primary, primary_dir)
    scored_objectives = _scored_objectives(rule, objectives, weights, primary)
    best, tied_with = _break_ties(front, pick, scored_objectives)
    baseline = _baseline(complete)
    best_before_guard = best
    off_front = None if baseline is None or baseline.name not in status else _off_front(status[baseline.name])
    best, guard = _energy_guard(front, best, baseline, scores, lower_better, rule, weights, objectives, off_front)
    for i, c in enumerate(front):
        status[c.name] = Assessment(c, "chosen" if i == best else "front", constraint_checks=checks[c.name],
                                    normalized=dict(zip(names, map(float, normed[i]))), score=float(scores[i]))
    chosen = front[best]
    reason = _reason(rule, front[pick], float(scores[pick]), weights, len(front), len(candidates), primary)
    tie = _tie_facts(front, pick, best_before_guard, tied_with, scored_objectives)
    reason += _tie_text(tie)
    if guard:
        reason += f"; {guard}"
    notes = _noise_notes((status[c.name] for c in candidates), chosen.name)
    if notes:
        reason += "; constraints are judged on point estimates, and these decisions are within the noise: " + \
                  "; ".join(notes)
    return SelectionDecision(chosen, True, reason, assessments=tuple(status[c.name] for c in candidates),
                             normalization=scales, baseline=baseline, energy_guard=guard,
                             tie_break_choice=tie if tie and tie["chosen"] != tie["rule_pick"] else None, **common)


def _scored_objectives(rule: str, objectives: Sequence[Objective], weights, primary: str) -> list[Objective]:
    """The objectives a rule's score depends on (ties are judged on these)."""
    if rule == "epsilon_constraint":
        return [o for o in objectives if o.name == primary]
    if weights is not None:
        return [o for o in objectives if weights.get(o.name, 0.0) > 0]
    return list(objectives)


def _break_ties(front: list[Candidate], best: int, objectives: Sequence[Objective]) -> tuple[int, list[int]]:
    """The rule's pick, or a front member tied with it beyond the noise on every scored objective
    that wins the tie-break (fewer operations, smaller model, higher accuracy, name); and the
    members tied with the pick (the pick included)."""
    tied_with = [i for i, c in enumerate(front) if i == best or tied(front[best].metrics, c.metrics, objectives)]
    return min(tied_with, key=lambda i: tie_key(front[i].name, front[i].metrics)), tied_with


def _tie_facts(front: list[Candidate], pick: int, best: int, tied_with: Sequence[int],
               objectives: Sequence[Objective]) -> dict | None:
    """The tie rule as applied (None without a tie): the rule's pick, the member chosen, the
    members tied with the pick, the objectives their intervals overlap on, and what decided."""
    others = [i for i in tied_with if i != best]
    if not others:
        return None
    keys = {i: tie_key(front[i].name, front[i].metrics) for i in tied_with}
    runner = min(others, key=keys.get)
    part = next(k for k in range(len(keys[best])) if keys[best][k] != keys[runner][k])

    def shown(i: int) -> str:  # a figure of parts 0-2 (the name, part 3, is said without figures)
        value = -keys[i][part] if part == 2 else keys[i][part]  # part 2 is the accuracy, negated to sort
        return "unknown" if not math.isfinite(value) else f"{value:,.6g}"

    better = ("fewer", "smaller", "higher", "first by")[part]
    decided = (f"{better} {TIE_KEY_PARTS[part]}: {shown(best)} against {shown(runner)} for {front[runner].name!r}"
               if part < 3 else f"{better} {TIE_KEY_PARTS[part]} (ascending), the other figures being equal")
    return {"rule_pick": front[pick].name, "chosen": front[best].name,
            "tied": [front[i].name for i in tied_with if i != pick],
            "on": [o.name for o in objectives],
            "decided": decided}


def _tie_text(tie: dict | None) -> str:
    """The tie rule as applied, for the reason: who is tied with the rule's pick, who won and on what."""
    if tie is None:
        return ""
    pick, best, decided = tie["rule_pick"], tie["chosen"], tie["decided"]
    on = ", ".join(tie["on"]) or "every scored objective (none is scored)"
    if best != pick:
        return (f"; {best!r} is tied with {pick!r} (95 % intervals overlap on {on}) and "
                f"wins the tie-break on {decided}, so {best!r} is chosen")
    names = ", ".join(repr(name) for name in tie["tied"])
    return f"; {names} tied with {pick!r} (95 % intervals overlap on {on}), and {pick!r} wins the tie-break on {decided}"


def _is_fp32(c: Candidate) -> bool:
    return c.metadata.get("variant") == "fp32" or c.name == "fp32" or c.name.endswith("/fp32")


def _baseline(complete: Sequence[Candidate]) -> Candidate | None:
    """The most accurate fp32 candidate (ties by name): what the run is compared against."""
    fp32 = [c for c in complete if _is_fp32(c) and c.value(ACCURACY) is not None]
    return min(fp32, key=lambda c: (-c.value(ACCURACY), c.name)) if fp32 else None


def _energy_metric(c: Candidate) -> str | None:
    return ENERGY if c.value(ENERGY) is not None else SCI if c.value(SCI) is not None else None


def _off_front(assessment: Assessment) -> str:
    """Why a candidate is not on the front, for the guard's text."""
    if assessment.status == "violates_constraints":
        return f"excluded by constraints ({'; '.join(assessment.reasons)})"
    if assessment.status == "dominated":
        return f"dominated by {', '.join(map(repr, assessment.dominated_by))}"
    return f"excluded ({'; '.join(assessment.reasons) or assessment.status})"


def _energy_guard(front, best, baseline, scores, lower_better, rule, weights, objectives,
                  off_front: str | None = None) -> tuple[int, str | None]:
    """Never choose a variant significantly worse than the baseline on energy, unless the user's
    weights put no weight on SCI (then they asked for it).

    When the baseline is not on the front (``off_front`` says why: excluded by constraints, or
    dominated on the objectives) every front member may be significantly worse than it; the
    pick then stands, and the text says so."""
    if baseline is None:
        return best, None
    metric = _energy_metric(front[best])
    if metric is None or baseline.value(metric) is None:
        return best, None
    if weights is not None and rule in ("chebyshev", "weighted_sum") and weights.get(SCI, 0.0) == 0.0 \
            and weights.get(ENERGY, 0.0) == 0.0:
        return best, None
    reference = interval(baseline.metrics, metric)
    if compare(interval(front[best].metrics, metric), reference, "min") >= 0:
        return best, None
    allowed = [i for i, c in enumerate(front)
               if c.value(metric) is not None and compare(interval(c.metrics, metric), reference, "min") >= 0]
    if not allowed:
        why = f" was {off_front}" if off_front else " is not on the front"
        return best, (f"the baseline {baseline.name!r}{why}; the chosen {front[best].name!r} is significantly worse "
                      f"on {metric} than it, as is every front member")
    sign = 1.0 if lower_better else -1.0
    pick = min(allowed, key=lambda i: (sign * float(scores[i]), tie_key(front[i].name, front[i].metrics)))
    return pick, (f"{front[best].name!r} scored best but is significantly worse than the baseline "
                  f"{baseline.name!r} on {metric}, so {front[pick].name!r} (the best not significantly worse) "
                  "is chosen")
