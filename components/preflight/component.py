"""KFP adapter for the up-front check of a run's options. Everything the body needs is imported
inside it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.

from .._runtime import component


@component("pandas", "pyarrow", "scikit-learn", "onnx", "onnxruntime")
def check_training_options(
    test_size: float = 0.25,
    seed: int = 0,
    fit_threads: int = 1,
    tracker: str = "offline",
    country_iso_code: str = "",
    hardware_profile: str = "n2-standard-4",
    hardware_overrides: dict = {},
    variant_names: list = ["fp32", "int8_dynamic", "int8_static", "fp16"],
    tolerance_points: float = 1.0,
    functional_unit_size: int = 1000,
    expected_lifetime_inferences: float = 100000000.0,
    max_seconds_per_variant: float = 3.0,
    intensity_basis: str = "annual_average",
    selection_rule: str = "knee",
    selection_weights: dict = {},
    selection_constraints: dict = {"max_accuracy_drop_points": 1.0},
    on_no_candidate: str = "fail",
    deploy_name: str = "greenkfp-model",
    deploy_namespace: str = "default",
    deploy_region: str = "GB",
    deploy_service_account: str = "",
):
    """Check every option of the training pipeline before anything expensive runs (the gate's
    wait above all), each by the rules of the step that will use it; fail at once, naming the
    option and its value.

    Args:
        test_size: Fraction of the rows in the test split.
        seed: Random seed of the split.
        fit_threads: BLAS and OpenMP threads of each fit, a whole number >= 1.
        tracker: CodeCarbon tracker, offline or online.
        country_iso_code: CodeCarbon's country (ISO alpha-3), or empty.
        hardware_profile: The hardware preset training and SCI are modeled on.
        hardware_overrides: Fields of the preset to override.
        variant_names: The ONNX variants to build.
        tolerance_points: Largest accuracy drop, percentage points, for an eligible variant.
        functional_unit_size: Inferences per SCI functional unit.
        expected_lifetime_inferences: Inferences over the model's service life.
        max_seconds_per_variant: Time budget of each variant's SCI benchmark, seconds.
        intensity_basis: annual_average, gate_window, or a number of gCO2eq/kWh.
        selection_rule: knee, chebyshev, weighted_sum or epsilon_constraint.
        selection_weights: Objective weights for chebyshev and weighted_sum.
        selection_constraints: Any of min_accuracy, max_accuracy_drop_points, max_latency_ms, max_sci.
        on_no_candidate: fail or block.
        deploy_name: Name of the served model and its manifests (DNS-1035 label, <= 53 characters).
        deploy_namespace: Namespace of the serving manifests (DNS-1123 label).
        deploy_region: Grid region of the server's carbon metrics.
        deploy_service_account: Service account of the serving pods (empty: the default).
    """
    options = dict(locals())  # the parameters, before anything else is bound here

    from greenkfp.components.preflight import check_training_options as check

    check(**options)
