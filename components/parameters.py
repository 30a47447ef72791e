"""Every knob that more than one component, pipeline or CLI command shares, declared once: its
name, type, default and help.

KFP reads a component's or pipeline's parameters from its literal Python signature (a
component's source is what runs in the container), so those signatures are written out; a test
(``tests/test_parameters.py``) fails when any of them disagrees with this spec in name, type or
default. The CLI builds its options from the spec (``greenkfp.pipelines.cli``), and the
pipelines' gate step takes exactly :data:`GATE` by name.

Standard library only: embedded as-is in portable component builds.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameter:
    """One shared knob.

    Attributes:
        name: The parameter's name in every component and pipeline that takes it.
        type: ``str``, ``int``, ``float``, ``bool``, ``list`` or ``dict`` (what KFP sees).
        default: The default everywhere (a CLI command may only narrow it, see ``cli_default``).
        help: One line for ``--help``, the docstrings and the README.
        flag: The CLI option (``--duration``); empty: not on the command line.
        kind: How the CLI reads the text: ``""`` (by type), ``duration`` (``2h``, ``90m``: a
            float of hours), ``json`` (a list or object as JSON), ``list`` (several words).
        choices: The allowed values, when fixed.
        cli_default: A default that only ``greenkfp run-local`` uses, stated in its help (a
            local run decides without sleeping for hours).
    """

    name: str
    type: type
    default: Any
    help: str
    flag: str = ""
    kind: str = ""
    choices: tuple[str, ...] = ()
    cli_default: Any = None

    def fresh_default(self) -> Any:
        """The default, copied (lists and dicts are mutable)."""
        return copy.deepcopy(self.default)


def _spec(*parameters: Parameter) -> dict[str, Parameter]:
    return {p.name: p for p in parameters}


#: The carbon-forecast gate: the component, both pipelines, ``run-local`` and ``submit --carbon-aware``.
GATE = _spec(
    Parameter("regions", list, ["GB"], "candidate grid regions, the first is home (where 'run now' is priced)",
              flag="--regions", kind="list"),
    Parameter("duration_hours", float, 1.0, "expected duration of the gated job (hours; the CLI takes 2h, 90m)",
              flag="--duration", kind="duration"),
    Parameter("provider", str, "embedded",
              "forecast provider: embedded (offline default), uk, electricitymaps, watttime or carbon_aware_sdk",
              flag="--provider"),
    Parameter("fallback_providers", list, [], "providers tried in order when the primary fails",
              flag="--fallback", kind="list"),
    Parameter("earliest_start", str, "", "ISO 8601 UTC earliest start; empty means now", flag="--earliest-start"),
    Parameter("deadline", str, "", "ISO 8601 UTC time by which the job must end; empty means none",
              flag="--deadline"),
    Parameter("max_delay_hours", float, 12.0, "longest wait before starting, counted from the earliest start "
              "(hours; the CLI takes 12h; 0: run now or refuse)", flag="--max-delay", kind="duration"),
    Parameter("threshold", str, "", "refuse when the best window averages above it: empty (none), gCO2eq/kWh "
              "such as 250, or a percentile of the forecast such as p25", flag="--threshold"),
    Parameter("min_savings_percent", float, 0.0, "wait only if that saves at least this percentage",
              flag="--min-savings"),
    Parameter("on_provider_failure", str, "fail_open", "fail_open (run now, recorded) or fail_closed (fail the task)",
              flag="--on-provider-failure", choices=("fail_open", "fail_closed")),
    Parameter("mode", str, "wait", "plan (decide and return the start time) or wait (sleep until it)",
              flag="--mode", choices=("plan", "wait"), cli_default="plan"),
    Parameter("energy_kwh", float, 0.0, "estimated energy of the job, kWh, to express savings in grams (0: none)",
              flag="--energy-kwh"),
    Parameter("provider_options", dict, {}, "per-provider settings, keyed by provider name, such as "
              '{"embedded": {"replay_year": 2023}}; never secrets', flag="--provider-options", kind="json"),
)

#: The flagship training pipeline's knobs beyond the gate, each shared with the component that uses it.
TRAINING = _spec(
    Parameter("dataset", str, "digits", "a builtin dataset (digits, breast_cancer, wine, iris, wide) or the "
              "path or URI of a CSV or Parquet file", flag="--dataset"),
    Parameter("label_column", str, "", "the label column of a CSV or Parquet dataset", flag="--label-column"),
    Parameter("test_size", float, 0.25, "fraction of the rows in the test split", flag="--test-size"),
    Parameter("seed", int, 0, "random seed of the split", flag="--seed"),
    Parameter("candidates", str, "", "JSON list of candidate specs {name, estimator, params}; empty means the "
              "defaults (the CLI takes a file)", flag="--candidates"),
    Parameter("fit_threads", int, 1, "BLAS and OpenMP threads of each fit (threadpoolctl): 1 keeps the "
              "candidates' concurrent fits from oversubscribing the cores, whose spinning threads would make "
              "fit time and energy vary many times over between runs", flag="--fit-threads"),
    Parameter("tracker", str, "offline", "CodeCarbon tracker: offline or online", flag="--tracker",
              choices=("offline", "online")),
    Parameter("country_iso_code", str, "", "CodeCarbon's country (ISO alpha-3) when the region is not an "
              "embedded zone", flag="--country-iso-code"),
    Parameter("hardware_profile", str, "n2-standard-4", "the hardware preset training and SCI are modeled on "
              "(n2-standard-4, e2-standard-4, m5.xlarge, c5.2xlarge, Standard_D4s_v5)", flag="--hardware-profile"),
    Parameter("hardware_overrides", dict, {}, 'fields of the preset to override, e.g. {"cpu_tdp_w": 95}',
              flag="--hardware-overrides", kind="json"),
    Parameter("variant_names", list, ["fp32", "int8_dynamic", "int8_static", "fp16"], "ONNX variants to build",
              flag="--variants", kind="list"),
    Parameter("tolerance_points", float, 1.0, "largest accuracy drop, percentage points, for a variant to be "
              "eligible", flag="--tolerance-points"),
    Parameter("functional_unit_size", int, 1000, "inferences per SCI functional unit R", flag="--functional-unit"),
    Parameter("expected_lifetime_inferences", float, 100000000.0, "inferences over the model's service life",
              flag="--expected-inferences"),
    Parameter("max_seconds_per_variant", float, 3.0, "time budget of each variant's SCI benchmark, seconds",
              flag="--sci-seconds"),
    Parameter("intensity_basis", str, "annual_average", "grid intensity I for inference: annual_average, "
              "gate_window, or a number of gCO2eq/kWh", flag="--intensity-basis"),
    Parameter("selection_rule", str, "knee", "knee, chebyshev, weighted_sum or epsilon_constraint",
              flag="--selection-rule", choices=("knee", "chebyshev", "weighted_sum", "epsilon_constraint")),
    Parameter("selection_weights", dict, {}, 'objective weights for chebyshev and weighted_sum, e.g. {"sci": 2}',
              flag="--selection-weights", kind="json"),
    Parameter("selection_constraints", dict, {"max_accuracy_drop_points": 1.0}, "any of min_accuracy, "
              "max_accuracy_drop_points, max_latency_ms, max_sci", flag="--selection-constraints", kind="json"),
    Parameter("on_no_candidate", str, "fail", "fail the run, or block promotion, when no variant qualifies",
              flag="--on-no-candidate", choices=("fail", "block")),
    Parameter("gatekeeper_url", str, "", "the carbon-budget gatekeeper's URL: the run reserves its estimated carbon "
              "there first and settles its actual emissions at the end (the team's token from "
              "GREENKFP_GATEKEEPER_TOKEN); empty: no budget", flag="--gatekeeper-url"),
    # deploy_model (after selection): the serving manifests of the chosen variant
    Parameter("deploy_name", str, "greenkfp-model", "name of the served model and of its InferenceService, "
              "Deployment and Service (a DNS-1035 label of at most 53 characters)", flag="--deploy-name"),
    Parameter("deploy_namespace", str, "default", "Kubernetes namespace of the serving manifests (a DNS-1123 label)",
              flag="--deploy-namespace"),
    Parameter("deploy_region", str, "GB", "grid region whose carbon intensity the server's metrics use",
              flag="--deploy-region"),
    Parameter("deploy_service_account", str, "", "service account of the serving pods, whose secret holds the "
              "model storage's credentials (empty: the namespace's default)",
              flag="--deploy-service-account"),
)

#: Every shared knob, by name.
SPEC: dict[str, Parameter] = {**GATE, **TRAINING}


#: The named bases of the grid intensity ``I`` the SCI uses for inference (or a number).
INTENSITY_BASES = ("annual_average", "gate_window")


#: More BLAS threads than any node has cores is a typo (and past C's int, an overflow mid-run).
MAX_FIT_THREADS = 1024


def check_fit_threads(value) -> int:
    """``value`` as the fit's BLAS/OpenMP thread count: a whole number from 1 to :data:`MAX_FIT_THREADS`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FIT_THREADS:
        raise ValueError(f"fit_threads must be a whole number from 1 to {MAX_FIT_THREADS}, got {value!r}")
    return value


def parse_intensity_basis(basis: Any) -> float | None:
    """``intensity_basis``: None for a named basis, or the gCO2eq/kWh a user gives as a number.

    Raises:
        ValueError: neither a named basis nor a finite number >= 0.
    """
    if basis in INTENSITY_BASES:
        return None
    try:
        value = float(basis)
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise ValueError(f"intensity_basis must be one of {', '.join(INTENSITY_BASES)} or a number of gCO2eq/kWh "
                         f">= 0, got {basis!r}")
    return value
