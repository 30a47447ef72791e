"""KFP adapter for instrumented training. Everything the body needs is imported inside it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import NamedTuple

from kfp.dsl import Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from .._runtime import component


@component("pandas", "pyarrow", "scikit-learn", "skops", "codecarbon")
def train_with_emissions(
    train: Input[Dataset],
    test: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    emissions_csv: Output[Artifact],
    training_record: Output[Artifact],
    summary: Output[Markdown],
    candidate: dict,
    region: str = "GB",
    country_iso_code: str = "",
    provider: str = "embedded",
    provider_options: dict = {},
    fit_threads: int = 1,
    tracker: str = "offline",
    hardware_profile: str = "n2-standard-4",
    hardware_overrides: dict = {},
    allow_non_sklearn: bool = False,
) -> NamedTuple("TrainingOutputs", [("candidate", str), ("accuracy", float), ("energy_kwh", float),
                                     ("emissions_g", float)]):
    """Train a scikit-learn classifier while CodeCarbon measures its energy and emissions.

    The energy is then priced twice, each figure labelled: by CodeCarbon (offline: a yearly
    country average) and at the hourly grid intensity of the region and the hours the fit ran.
    If CodeCarbon fails, the model is still trained and saved, and energy is marked unavailable.

    Args:
        train: Training split (greenkfp Parquet dataset).
        test: Test split, for accuracy and macro F1.
        candidate: {"name", "estimator" (import path, sklearn.* only by default), "params"}.
        region: Grid region of the run (an embedded zone such as GB), for both pricings.
        country_iso_code: CodeCarbon's country (ISO alpha-3) when region is not an embedded zone.
        provider: Carbon provider for the hourly pricing (default: the embedded data).
        provider_options: Settings per provider name, as the gate's, e.g.
            {"embedded": {"replay_year": 2023}} (no secrets; keys come from the environment).
        fit_threads: BLAS and OpenMP threads of the fit (threadpoolctl); 1 by default, so that
            candidates fitted side by side do not oversubscribe the cores.
        tracker: offline (default) or online CodeCarbon tracker.
        hardware_profile: The machine, a preset (n2-standard-4, e2-standard-4, m5.xlarge,
            c5.2xlarge, Standard_D4s_v5): its TDP and RAM replace CodeCarbon's guesses when it
            models the energy; where RAPL is readable, the measurement wins.
        hardware_overrides: Figures replacing the preset's, e.g. {"cpu_tdp_w": 65, "vcpus": 8}
            (fields of greenkfp.components.energy.HardwareProfile).
        allow_non_sklearn: Allow estimator classes outside sklearn.

    Returns:
        model: The fitted model (skops; metadata: framework, estimator, parameters, features, classes).
        metrics: Accuracy, macro F1, fit time, energy (kWh) and emissions (g CO2eq) when available.
        emissions_csv: CodeCarbon's emissions CSV (empty when CodeCarbon wrote none).
        training_record: The training record (JSON, schema greenkfp.training/v1): accuracy, energy
            and its method, emissions priced two ways.
        summary: The training record as a Markdown table.
        candidate: The candidate's name.
        accuracy: Test accuracy.
        energy_kwh: Energy of the fit, kWh (-1 when unavailable).
        emissions_g: Emissions at the hourly intensity, g CO2eq (-1 when unavailable).
    """
    import tempfile
    from collections import namedtuple

    from greenkfp.components.training.train import train_candidate, write_training_outputs

    result = train_candidate(
        train.path, test.path, candidate, model.path, region=region, country_iso_code=country_iso_code or None,
        provider=provider, provider_options=provider_options, tracker=tracker,
        fit_threads=fit_threads, hardware_profile=hardware_profile, hardware_overrides=hardware_overrides,
        output_dir=tempfile.mkdtemp(prefix="codecarbon-"), allow_non_sklearn=allow_non_sklearn,
    )
    model.metadata.update(result.model_metadata())
    for name, value in result.metrics().items():
        metrics.log_metric(name, value)
    emissions_csv.metadata.update(write_training_outputs(
        result, record_path=training_record.path, summary_path=summary.path, csv_path=emissions_csv.path))
    training_record.metadata["schema"] = "greenkfp.training/v1"
    print(result.to_record().markdown())
    outputs = namedtuple("TrainingOutputs", ["candidate", "accuracy", "energy_kwh", "emissions_g"])
    hourly = result.pricing.emissions_g if result.pricing else -1.0
    return outputs(result.spec.name, result.accuracy, result.energy.energy_kwh or -1.0, hourly)


@component("scikit-learn")
def resolve_candidates(candidates: str = "") -> list:
    """Validate candidate specs before any waiting or training, and list them for a ParallelFor.

    Each spec is built (import path, hyperparameters checked against the estimator) and fitted
    once on a tiny synthetic problem, so a typo or a value only the fit refuses fails the run at
    once, not hours later after the carbon gate's wait.

    Args:
        candidates: JSON list of {"name", "estimator", "params"}; empty means the defaults
            (logistic regression, random forest, a small MLP, a wide MLP).

    Returns:
        Output: The validated specs, one dict per candidate.
    """
    from greenkfp.components.training.estimators import validate_candidates

    return [spec.to_dict() for spec in validate_candidates(candidates or None)]
