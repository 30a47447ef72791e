"""Train one candidate under CodeCarbon and report its energy and emissions honestly.

Order of work: validate everything (spec, region, data), then fit under the tracker, then score,
save (skops) and price. A CodeCarbon failure never loses the model: the energy fields are then
marked unavailable with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from greenkfp.components._files import write_atomic
from greenkfp.components.parameters import check_fit_threads
from greenkfp.components.records import TrainingRecord, write_record
from greenkfp.components.carbon.errors import CarbonError
from greenkfp.components.carbon.intensity import parse_provider_options
from greenkfp.components.data.datasets import read_dataset
from greenkfp.components.energy import (
    DEFAULT_PROFILE,
    EnergyMeasurement,
    EnergyTracker,
    HardwareProfile,
    codecarbon_location,
    modeled_caveat,
    resolve_profile,
)

from .estimators import EstimatorSpec, build_estimator
from ..models import save_model
from .pricing import HourlyPricing, price_energy


@dataclass(frozen=True)
class TrainingResult:
    spec: EstimatorSpec
    accuracy: float
    macro_f1: float
    fit_seconds: float
    energy: EnergyMeasurement
    pricing: HourlyPricing | None
    pricing_error: str | None
    model_path: str
    feature_names: list[str]
    label: str
    classes: list
    train_rows: int
    test_rows: int
    fit_threads: int = 1

    def metrics(self) -> dict[str, float]:
        """Numbers for the KFP UI; names carry units. Unavailable figures are left out."""
        figures = {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "fit_seconds": self.fit_seconds,
            "energy_available": 1.0 if self.energy.available else 0.0,
        }
        if self.energy.available:
            figures["energy_kwh"] = self.energy.energy_kwh
            figures["emissions_codecarbon_g"] = self.energy.codecarbon_emissions_g
        if self.pricing is not None:
            figures["emissions_hourly_g"] = self.pricing.emissions_g
            figures["intensity_hourly_g_per_kwh"] = self.pricing.intensity.gco2_per_kwh
        return {k: float(v) for k, v in figures.items() if v is not None}

    def model_metadata(self) -> dict:
        return {
            "framework": "scikit-learn",
            "format": "skops",
            "sklearn_version": sklearn.__version__,
            "estimator": self.spec.estimator,
            "candidate": self.spec.name,
            "parameters": dict(self.spec.params),
            "feature_names": list(self.feature_names),
            "label": self.label,
            "classes": list(self.classes),
        }

    def to_record(self) -> TrainingRecord:
        return TrainingRecord.from_dict({
            "schema": TrainingRecord.SCHEMA,
            "candidate": self.spec.to_dict(),
            "model": self.model_metadata(),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "fit_seconds": self.fit_seconds,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
            "fit_threads": self.fit_threads,
            "energy": self.energy.to_dict(),
            "emissions": {
                "codecarbon_g": self.energy.codecarbon_emissions_g,
                "codecarbon_basis": "CodeCarbon's own intensity for the country/region "
                f"({self.energy.tracker} tracker; offline: a yearly average)",
                "hourly_g": None if self.pricing is None else self.pricing.emissions_g,
                "hourly_basis": None if self.pricing is None else
                f"{self.pricing.intensity.provider} {self.pricing.intensity.data_kind.replace('_', ' ')} intensity of "
                f"{self.pricing.intensity.region} over the fit's hours",
                "hourly_pricing": None if self.pricing is None else self.pricing.to_dict(),
                "hourly_unavailable_reason": self.pricing_error,
            },
            "units": {"energy": "kWh", "emissions": "g CO2eq", "intensity": "gCO2eq/kWh", "time": "s"},
        })


def train_candidate(
    train_path: str,
    test_path: str,
    spec: EstimatorSpec | dict,
    model_path: str,
    *,
    region: str = "GB",
    country_iso_code: str | None = None,
    provider: str = "embedded",
    provider_options: Mapping[str, Any] | None = None,
    tracker: str = "offline",
    fit_threads: int = 1,
    hardware_profile: str | HardwareProfile = DEFAULT_PROFILE,
    hardware_overrides: Mapping[str, Any] | None = None,
    output_dir: str | None = None,
    allow_non_sklearn: bool = False,
) -> TrainingResult:
    """Fit ``spec`` on the train split under CodeCarbon, score it on the test split, save it.

    Args:
        train_path, test_path: greenkfp Parquet datasets (from ``load_dataset``).
        spec: The candidate (name, estimator import path, hyperparameters).
        model_path: Where the skops model goes.
        region: Grid region the fit runs in: prices the energy hourly, and (when
            ``country_iso_code`` is not given) locates CodeCarbon's offline intensity.
        country_iso_code: CodeCarbon's country (ISO 3166 alpha-3) when ``region`` is not one
            of the embedded zones.
        provider, provider_options: Carbon provider for the hourly pricing, and options per
            provider name (``{"embedded": {"replay_year": 2023}}``), checked before the fit.
        tracker: ``offline`` (default) or ``online`` CodeCarbon tracker.
        fit_threads: BLAS and OpenMP threads of the fit (threadpoolctl). Candidates are fitted
            side by side; with every BLAS pool as wide as the machine, their spinning threads
            oversubscribe the cores and the same seeded fit took 0.3 s or 20 s (and as much more
            energy) depending on its neighbours. 1 by default.
        hardware_profile, hardware_overrides: The machine (a preset name and field overrides,
            see ``energy.resolve_profile``). When CodeCarbon models the energy, the profile's
            TDP and RAM replace its guesses; where CodeCarbon reads RAPL, the measurement wins
            and the profile's TDP is not applied (the RAM stays modeled: method "mixed").
        output_dir: Where CodeCarbon writes its emissions CSV.
        allow_non_sklearn: Permit estimator classes outside ``sklearn.``.
    """
    spec = spec if isinstance(spec, EstimatorSpec) else EstimatorSpec.from_dict(spec)
    check_fit_threads(fit_threads)
    provider_options = parse_provider_options(provider_options)  # a typo fails now, not after the fit
    estimator = build_estimator(spec, allow_non_sklearn=allow_non_sklearn)
    if country_iso_code:
        country, codecarbon_region = country_iso_code, None
    else:
        try:
            country, codecarbon_region = codecarbon_location(region)
        except ValueError as exc:
            raise ValueError(f"{exc}; for another region, pass country_iso_code (ISO 3166 alpha-3, e.g. DEU)") from None
    profile = resolve_profile(hardware_profile, hardware_overrides)
    train, test = read_dataset(train_path), read_dataset(test_path)
    if list(train.feature_names) != list(test.feature_names) or train.label != test.label:
        raise ValueError(
            f"train and test splits differ: features {len(train.feature_names)} vs {len(test.feature_names)}, "
            f"label {train.label!r} vs {test.label!r}"
        )

    with EnergyTracker(country_iso_code=country, region=codecarbon_region, mode=tracker,
                       output_dir=output_dir, hardware=profile, project_name=f"greenkfp-{spec.name}") as tracked:
        started = time.perf_counter()
        with threadpool_limits(limits=fit_threads):
            estimator.fit(train.X, train.y)
        fit_seconds = time.perf_counter() - started
    energy = tracked.result

    predicted = estimator.predict(test.X)
    save_model(estimator, model_path)
    pricing, pricing_error = None, None
    if energy.available:
        try:
            pricing = price_energy(energy.energy_kwh, energy.started_at, energy.ended_at, region, provider, provider_options)
        except (CarbonError, ValueError) as exc:
            pricing_error = f"hourly pricing unavailable: {exc}"
    else:
        pricing_error = f"hourly pricing unavailable: energy unavailable ({energy.reason})"
    classes = [c.item() if isinstance(c, np.generic) else c for c in estimator.classes_]
    return TrainingResult(
        spec=spec,
        accuracy=float(accuracy_score(test.y, predicted)),
        macro_f1=float(f1_score(test.y, predicted, average="macro", zero_division=0)),
        fit_seconds=fit_seconds,
        energy=energy,
        pricing=pricing,
        pricing_error=pricing_error,
        model_path=str(Path(model_path)),
        feature_names=list(train.feature_names),
        label=train.label,
        classes=classes,
        train_rows=int(train.X.shape[0]),
        test_rows=int(test.X.shape[0]),
        fit_threads=fit_threads,
    )


def write_training_outputs(result: TrainingResult, *, record_path: str, summary_path: str, csv_path: str) -> dict:
    """Write the training record (JSON), the Markdown summary and CodeCarbon's CSV (empty when
    CodeCarbon wrote none); return the CSV artifact's metadata."""
    record = result.to_record()
    write_record(record, record_path)
    write_atomic(summary_path, record.markdown())
    source = result.energy.csv_path
    write_atomic(csv_path, Path(source).read_bytes() if source and Path(source).is_file() else b"")
    return {"format": "csv", "source": "codecarbon", "available": bool(source), "reason": result.energy.reason}
