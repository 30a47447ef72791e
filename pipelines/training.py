"""The flagship carbon-aware training pipeline: load a dataset, ask the gate when to train, then
in the window it chose train every candidate under CodeCarbon (``ParallelFor``), turn each into
parity-checked ONNX variants (fp32, int8, fp16); after the loop, measure every variant of every
candidate in one interleaved benchmark (SCI with 95 % intervals), select the
Pareto-optimal variant under the user's constraints, and report what the run saved against
doing none of that.

Two flavours come from one definition, as for the gate pipeline: ``kubeflow`` (with
kfp-kubernetes platform config) and ``vertex`` (without). Local runs use ``vertex``.
"""

from kfp import dsl

from greenkfp.components import (
    benchmark_variants,
    carbon_budget_gate,
    carbon_budget_off,
    check_training_options,
    convert_and_quantize,
    deploy_model,
    select_pareto_model,
    sustainability_report,
    gate_outcome,
    load_dataset,
    resolve_candidates,
    settle_carbon_budget,
    train_with_emissions,
)

from .platform import PLATFORMS, KubeflowSettings, Steps
from .steps import add_carbon_gate

PIPELINE_NAME = "greenkfp-carbon-aware-training"
#: The container steps that do the run's work (the carbon budget's estimate per step counts them).
WORK_STEPS = ("load-dataset", "resolve-candidates", "check-training-options", "carbon-forecast-gate",
              "train-with-emissions", "convert-and-quantize", "benchmark-variants", "select-pareto-model",
              "deploy-model", "sustainability-report")


def build_training_pipeline(platform: str = "vertex", settings: KubeflowSettings | None = None):
    """The carbon-aware training pipeline function for ``platform`` (``kubeflow`` or ``vertex``)."""
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Load a dataset, wait for the greenest window the carbon forecast allows, then "
        "train every candidate model while CodeCarbon measures its energy, priced at the hour's grid intensity.",
    )
    def carbon_aware_training_pipeline(
        dataset: str = "digits",
        label_column: str = "",
        test_size: float = 0.25,
        seed: int = 0,
        candidates: str = "",
        regions: list = ["GB"],
        duration_hours: float = 1.0,
        provider: str = "embedded",
        fallback_providers: list = [],
        earliest_start: str = "",
        deadline: str = "",
        max_delay_hours: float = 12.0,
        threshold: str = "",
        min_savings_percent: float = 0.0,
        on_provider_failure: str = "fail_open",
        mode: str = "wait",
        energy_kwh: float = 0.0,
        provider_options: dict = {},
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
        gatekeeper_url: str = "",
        deploy_name: str = "greenkfp-model",
        deploy_namespace: str = "default",
        deploy_region: str = "GB",
        deploy_service_account: str = "",
    ):
        step = Steps(platform, PIPELINE_NAME, settings)
        # the carbon budget first: nothing runs before the gatekeeper has reserved the run's estimate
        with dsl.If(gatekeeper_url != "", name="carbon-budget"):
            budget = carbon_budget_gate(gatekeeper_url=gatekeeper_url, pipeline=PIPELINE_NAME,
                                        run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, energy_kwh=energy_kwh,
                                        steps=len(WORK_STEPS), hardware_profile=hardware_profile, regions=regions)
            step(budget, "carbon-budget-gate", cache=False, gatekeeper=True)
        with dsl.Else(name="no-carbon-budget"):
            step(carbon_budget_off(stage="admission"), "carbon-budget-off")
        data = load_dataset(dataset=dataset, label_column=label_column, test_size=test_size, seed=seed)
        step(data, "load-dataset").after(budget)
        specs = resolve_candidates(candidates=candidates)
        step(specs, "resolve-candidates").after(budget)
        checked = check_training_options(
            test_size=test_size, seed=seed, fit_threads=fit_threads, tracker=tracker, country_iso_code=country_iso_code,
            hardware_profile=hardware_profile, hardware_overrides=hardware_overrides, variant_names=variant_names,
            tolerance_points=tolerance_points, functional_unit_size=functional_unit_size,
            expected_lifetime_inferences=expected_lifetime_inferences, max_seconds_per_variant=max_seconds_per_variant,
            intensity_basis=intensity_basis, selection_rule=selection_rule, selection_weights=selection_weights,
            selection_constraints=selection_constraints, on_no_candidate=on_no_candidate,
            deploy_name=deploy_name, deploy_namespace=deploy_namespace, deploy_region=deploy_region,
            deploy_service_account=deploy_service_account,
        )
        step(checked, "check-training-options").after(budget)
        gate = add_carbon_gate(step, locals())
        gate.after(data, specs, checked)  # validate data, candidates and options before waiting, not after
        with dsl.If(gate.outputs["should_run"] == True, name="green-window"):  # noqa: E712 (kfp condition)
            with dsl.ParallelFor(specs.output, name="candidates") as candidate:
                fit = train_with_emissions(
                    train=data.outputs["train"],
                    test=data.outputs["test"],
                    candidate=candidate,
                    region=gate.outputs["region"],
                    country_iso_code=country_iso_code,
                    provider=provider,
                    provider_options=provider_options,
                    fit_threads=fit_threads,
                    tracker=tracker,
                    hardware_profile=hardware_profile,
                    hardware_overrides=hardware_overrides,
                )
                step(fit, "train-with-emissions", cache=False, spot=True, credentials=True)
                onnx = convert_and_quantize(
                    model=fit.outputs["model"],
                    test=data.outputs["test"],
                    calibration=data.outputs["train"],
                    variant_names=variant_names,
                    tolerance_points=tolerance_points,
                )
                step(onnx, "convert-and-quantize")
            # one interleaved benchmark of every variant of every candidate: same node, same process,
            # same threads, so the variants' figures are comparable (and come with intervals)
            sci = benchmark_variants(
                variants=dsl.Collected(onnx.outputs["variants"]),
                variant_lists=dsl.Collected(onnx.outputs["variant_list"]),
                training_records=dsl.Collected(fit.outputs["training_record"]),
                test=data.outputs["test"],
                decision=gate.outputs["decision"],
                hardware_profile=hardware_profile,  # the same machine as training's
                hardware_overrides=hardware_overrides,
                functional_unit_size=functional_unit_size,
                expected_lifetime_inferences=expected_lifetime_inferences,
                max_seconds_per_variant=max_seconds_per_variant,
                intensity_basis=intensity_basis,
                provider_options=provider_options,
                seed=seed,
            )
            step(sci, "benchmark-variants", cache=False, spot=True, whole_cpus=True)
            selection = select_pareto_model(
                sci_reports=sci.outputs["sci_reports"],
                variant_lists=dsl.Collected(onnx.outputs["variant_list"]),
                variants=dsl.Collected(onnx.outputs["variants"]),
                selection_rule=selection_rule,
                selection_weights=selection_weights,
                selection_constraints=selection_constraints,
                on_no_candidate=on_no_candidate,
            )
            step(selection, "select-pareto-model")
            # manifests only (KServe InferenceService, Deployment + Service): applying them is the user's step
            deployed = deploy_model(
                selection_record=selection.outputs["selection_record"],
                selected=selection.outputs["selected"],
                deploy_name=deploy_name,
                deploy_namespace=deploy_namespace,
                hardware_profile=hardware_profile,
                hardware_overrides=hardware_overrides,
                deploy_region=deploy_region,
                deploy_service_account=deploy_service_account,
            )
            step(deployed, "deploy-model")
            report = sustainability_report(
                decision=gate.outputs["decision"],
                training_records=dsl.Collected(fit.outputs["training_record"]),
                sci_reports=sci.outputs["sci_reports"],
                selection_record=selection.outputs["selection_record"],
                expected_lifetime_inferences=expected_lifetime_inferences,
            )
            step(report, "sustainability-report")
            with dsl.If(gatekeeper_url != "", name="settle-carbon-budget"):
                settled = settle_carbon_budget(report_json=report.outputs["report_json"], gatekeeper_url=gatekeeper_url,
                                               run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, pipeline=PIPELINE_NAME)
                step(settled, "settle-carbon-budget", cache=False, gatekeeper=True)
            with dsl.Else(name="nothing-to-settle"):
                step(carbon_budget_off(stage="settlement"), "carbon-budget-off-settlement")
        with dsl.Else(name="refused"):
            refused = gate_outcome(decision=gate.outputs["decision"], branch="refused")
            step(refused, "refusal")

    return carbon_aware_training_pipeline
