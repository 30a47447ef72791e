"""One hardware profile for every step: training and SCI resolve the same name and overrides to
the same profile, and both refuse a bad override naming the field. Real cores, no mocks."""

from __future__ import annotations

import json

import pytest

from greenkfp.components.data.datasets import prepare_dataset
from greenkfp.components.energy import TEADS_RAM_W_PER_GB, resolve_profile
from greenkfp.components.quantization.variants import convert_and_quantize, write_component_outputs
from greenkfp.components.sci.evaluate import evaluate_variants
from greenkfp.components.training.train import train_candidate

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

LOGREG = {"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 50}}
PROFILE, OVERRIDES = "c5.2xlarge", {"cpu_tdp_w": 40, "ram_gb": 32.0, "lifespan_years": 5}


@pytest.fixture(scope="module")
def iris(tmp_path_factory):
    root = tmp_path_factory.mktemp("profile")
    prepare_dataset("iris", None, root / "train.parquet", root / "test.parquet", seed=1)
    return root


def test_training_and_sci_resolve_the_same_profile(iris):
    train, test = str(iris / "train.parquet"), str(iris / "test.parquet")
    result = train_candidate(train, test, LOGREG, str(iris / "model.skops"), region="GB",
                             hardware_profile=PROFILE, hardware_overrides=OVERRIDES, output_dir=str(iris / "cc"))
    record = result.to_record()
    expected = resolve_profile(PROFILE, dict(OVERRIDES))
    assert expected == resolve_profile(PROFILE, dict(OVERRIDES))  # the same name and overrides, the same profile
    energy = record.to_dict()["energy"]  # the profile and CodeCarbon's settings travel in the energy part
    assert energy["hardware_profile"] == expected.to_dict()
    settings = energy["codecarbon_settings"]
    assert settings["force_ram_power"] == pytest.approx(32 * TEADS_RAM_W_PER_GB)
    if record.energy.method == "modeled":  # no RAPL here: the profile's TDP is CodeCarbon's
        assert settings["force_cpu_power"] == 40

    reports = convert_and_quantize(iris / "model.skops", test, train, iris / "variants", variants=["fp32"])
    write_component_outputs(reports, variants_dir=iris / "variants", json_path=iris / "variants.json",
                            summary_path=iris / "variants.md")
    (iris / "record.json").write_text(record.to_json())
    (entry,) = evaluate_variants(iris / "variants", iris / "variants.json", test,
                                 training_record_path=iris / "record.json", intensity_basis="100", max_seconds=0.5,
                                 hardware_profile=PROFILE, hardware_overrides=OVERRIDES)
    assert entry.status == "scored"
    report = entry.to_dict()["report"]
    assert report["hardware_profile"] == energy["hardware_profile"]
    assert report["M"]["EL_s"] == 5 * 365 * 86400 and report["M"]["ToR"] == expected.host_vcpus


def test_a_bad_override_is_refused_by_both_steps_naming_the_field(iris):
    train, test = str(iris / "train.parquet"), str(iris / "test.parquet")
    model = iris / "never.skops"
    with pytest.raises(ValueError, match=r"hardware_overrides: unknown field\(s\) 'tdp'"):
        train_candidate(train, test, LOGREG, str(model), hardware_overrides={"tdp": 65})
    assert not model.exists()  # refused before any work
    with pytest.raises(ValueError, match=r"cpu_tdp_w must be > 0, got -1"):
        evaluate_variants(iris / "variants", iris / "none.json", test, hardware_profile=PROFILE,
                          hardware_overrides={"cpu_tdp_w": -1}, intensity_basis="100")
    with pytest.raises(ValueError, match=r"unknown hardware profile 'n9'; presets: n2-standard-4"):
        evaluate_variants(iris / "variants", iris / "none.json", test, hardware_profile="n9", intensity_basis="100")
