"""The carbon-intensity service (components/carbon/intensity.py): the one parser of provider
options, intensity over [start, end) and the annual average, against the embedded data and a
real HTTP provider on a local pytest-httpserver; and its consumers (gate, training pricing,
SCI, the report, the CLI) reading options through it."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from greenkfp.components.carbon import (
    EmbeddedProvider,
    GatePolicy,
    IntensityEstimate,
    ProviderOptionError,
    ProviderResponseError,
    UnknownRegionError,
    annual_average,
    decide,
    intensity_over,
    parse_provider_options,
)

UTC = timezone.utc
T = datetime(2023, 6, 14, 9, tzinfo=UTC)
FAST_UK = {"retry": {"attempts": 1}, "timeout": 0.5}


# --------------------------------------------------------------------------- the parser


def test_integers_kfp_widened_to_floats_come_back_as_integers():
    parsed = parse_provider_options({"embedded": {"replay_year": 2023.0, "signal": "direct"},
                                     "uk": {"base_url": "http://127.0.0.1:1", "retry": {"attempts": 2.0}, "timeout": 1.5}})
    assert parsed == {"embedded": {"replay_year": 2023, "signal": "direct"},
                      "uk": {"base_url": "http://127.0.0.1:1", "retry": {"attempts": 2}, "timeout": 1.5}}
    assert type(parsed["embedded"]["replay_year"]) is int and type(parsed["uk"]["retry"]["attempts"]) is int
    assert parse_provider_options(parsed) == parsed  # idempotent
    assert parse_provider_options(None) == parse_provider_options({}) == parse_provider_options("") == {}
    assert parse_provider_options('{"embedded": {"replay_year": 2022}}') == {"embedded": {"replay_year": 2022}}
    assert parse_provider_options({"embedded": {"replay_year": None}}) == {"embedded": {"replay_year": None}}


@pytest.mark.parametrize(
    "options, message, provider, option",
    [
        ({"embedded": {"replay_year": 2023.5}},
         r"provider_options\['embedded'\]\['replay_year'\] must be a whole number or null, got 2023.5", "embedded",
         "replay_year"),
        ({"uk": {"retry": {"attempts": 1.5}}}, r"provider_options\['uk'\]\['retry'\]\['attempts'\] must be a whole "
                                                r"number, got 1.5", "uk", "retry.attempts"),
        ({"embedded": {"replay_year": True}}, r"\['replay_year'\] must be a whole number or null, got True", "embedded",
         "replay_year"),
        ({"embeded": {"replay_year": 2023}}, r"unknown provider 'embeded'; known: embedded, uk, electricitymaps",
         "embeded", None),
        ({"replay_year": 2023}, r"unknown provider 'replay_year'.*an option of embedded, not a provider: nest it",
         "replay_year", None),
        ({"embedded": {"year": 2023}}, r"provider_options\['embedded'\] has an unknown option 'year' \(value 2023\); "
                                       r"embedded takes: replay_year, signal", "embedded", "year"),
        ({"embedded": {"clock": "now"}}, r"unknown option 'clock'", "embedded", "clock"),
        ({"uk": {"retry": {"tries": 3}}}, r"\['retry'\] has an unknown key 'tries' \(value 3\)", "uk", "retry.tries"),
        ({"embedded": {"signal": "marginal"}}, r"\['signal'\] must be one of 'lifecycle', 'direct', got 'marginal'",
         "embedded", "signal"),
        ({"uk": {"base_url": 8080}}, r"\['base_url'\] must be a string, got 8080", "uk", "base_url"),
        ({"electricitymaps": {"api_key": "x"}}, r"must not carry credentials \(api_key\)", "electricitymaps", "api_key"),
        ({"uk": "http://x"}, r"provider_options\['uk'\] must be a mapping of option to value", "uk", None),
        (["embedded"], r"provider_options must be a mapping of provider name to its options", None, None),
    ],
)
def test_bad_options_name_the_provider_the_option_and_the_value(options, message, provider, option):
    with pytest.raises(ProviderOptionError, match=message) as caught:
        parse_provider_options(options)
    assert isinstance(caught.value, ValueError)  # CLIs and validators that catch ValueError see it
    assert caught.value.provider == provider and caught.value.option == option


def test_the_gate_reads_options_through_the_parser():
    # kfp hands the gate {"embedded": {"replay_year": 2023.0}}: it used to crash in date()
    policy = GatePolicy(regions=("GB",), duration=timedelta(hours=2), max_delay=timedelta(hours=6),
                        earliest_start=datetime(2026, 11, 30, 9, tzinfo=UTC),
                        provider_options={"embedded": {"replay_year": 2023.0}})
    assert policy.provider_options == {"embedded": {"replay_year": 2023}}
    record = decide(policy).to_record()
    assert record.regions[0].data_kind == "replayed_historical" and "in 2023" in record.regions[0].note
    assert record.inputs.provider_options == {"embedded": {"replay_year": 2023}}
    with pytest.raises(ProviderOptionError, match="nest it"):
        GatePolicy(regions=("GB",), duration=timedelta(hours=1), provider_options={"replay_year": 2023})


# --------------------------------------------------------------------------- intensity over [start, end)


def by_hand(answer, start, end):
    total = weight = 0.0
    for slot_start, value in answer.series:
        overlap = (min(end, slot_start + answer.series.granularity) - max(start, slot_start)).total_seconds()
        if overlap > 0:
            total, weight = total + value * overlap, weight + overlap
    return total / weight


def test_intensity_over_is_time_weighted_on_the_embedded_data():
    start, end = T + timedelta(minutes=40), T + timedelta(hours=2, minutes=10)
    estimate = intensity_over("gb", start, end)
    answer = EmbeddedProvider().forecast("GB", start, end)
    assert isinstance(estimate, IntensityEstimate)
    assert estimate.gco2_per_kwh == pytest.approx(by_hand(answer, start, end), rel=1e-12)
    hours = answer.series.values
    assert estimate.gco2_per_kwh == pytest.approx((20 * hours[0] + 60 * hours[1] + 10 * hours[2]) / 90, rel=1e-12)
    assert (estimate.region, estimate.provider, estimate.data_kind) == ("GB", "embedded", "historical")
    assert estimate.signal == "lifecycle average (Electricity Maps, embedded)"
    assert "time-weighted average of 3 1:00:00 slot(s)" in estimate.basis
    assert (estimate.start, estimate.end) == (start, end)
    record = estimate.to_dict()
    assert record["start"] == start.isoformat() and record["units"] == {"intensity": "gCO2eq/kWh"}
    json.dumps(record)


def test_intensity_over_replays_the_year_the_options_name_and_reads_a_subsecond_interval():
    now = datetime(2026, 11, 30, 10, 15, tzinfo=UTC)  # outside the data: replayed
    estimate = intensity_over("DE-LU", now, now + timedelta(minutes=30), provider_options={"embedded": {"replay_year": 2023.0}})
    assert estimate.data_kind == "replayed_historical" and "in 2023" in estimate.note
    replayed = EmbeddedProvider(replay_year=2023).forecast("DE-LU", now, now + timedelta(minutes=30))
    assert estimate.gco2_per_kwh == pytest.approx(float(replayed.series.values[0]))
    default = intensity_over("DE-LU", now, now + timedelta(minutes=30))
    assert "in 2024" in default.note and default.gco2_per_kwh != estimate.gco2_per_kwh
    quick = intensity_over("GB", T + timedelta(minutes=5), T + timedelta(minutes=5, microseconds=20))
    assert quick.gco2_per_kwh == EmbeddedProvider().forecast("GB", T, T + timedelta(hours=1)).series.values[0]
    assert "slot containing" in quick.basis


def test_intensity_over_refuses_bad_input_by_name():
    with pytest.raises(ValueError, match="is before start"):
        intensity_over("GB", T, T - timedelta(hours=1))
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        intensity_over("GB", datetime(2023, 1, 1), datetime(2023, 1, 2, tzinfo=UTC))
    with pytest.raises(UnknownRegionError, match="Atlantis"):
        intensity_over("Atlantis", T, T + timedelta(hours=1))
    with pytest.raises(ProviderOptionError, match="unknown option 'replay'"):
        intensity_over("GB", T, T + timedelta(hours=1), provider_options={"embedded": {"replay": 2023}})


def uk_slots(start, values):
    slot = timedelta(minutes=30)
    return {"data": [{"from": (start + i * slot).strftime("%Y-%m-%dT%H:%MZ"),
                      "to": (start + (i + 1) * slot).strftime("%Y-%m-%dT%H:%MZ"),
                      "intensity": {"forecast": v, "actual": None, "index": "low"}} for i, v in enumerate(values)]}


def test_intensity_over_a_live_provider_weights_its_half_hour_slots(httpserver):
    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_json(uk_slots(T, [100, 200, 300, 400]))
    options = {"uk": {"base_url": httpserver.url_for(""), **FAST_UK}}
    start, end = T + timedelta(minutes=15), T + timedelta(minutes=75)
    estimate = intensity_over("GB", start, end, provider="uk", provider_options=options)
    # 15 min at 100, 30 at 200, 15 at 300
    assert estimate.gco2_per_kwh == pytest.approx((15 * 100 + 30 * 200 + 15 * 300) / 60)
    assert (estimate.provider, estimate.region, estimate.data_kind) == ("uk", "GB", "forecast")
    assert "3 0:30:00 slot(s)" in estimate.basis


def test_intensity_over_refuses_a_provider_answer_that_does_not_cover_the_interval(httpserver):
    httpserver.expect_request("/intensity/2023-06-14T09:00Z/fw48h").respond_with_json(uk_slots(T, [100, 200]))
    options = {"uk": {"base_url": httpserver.url_for(""), **FAST_UK}}
    with pytest.raises(ProviderResponseError, match="not all of"):
        intensity_over("GB", T, T + timedelta(hours=3), provider="uk", provider_options=options)


# --------------------------------------------------------------------------- the annual average


def year_mean(region, year, signal="lifecycle"):
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    answer = EmbeddedProvider(signal=signal).forecast(region, start, end)
    assert answer.data_kind == "historical"
    return float(np.mean(answer.series.values)), len(answer.series)


def test_annual_average_is_the_latest_full_year_unless_a_year_or_a_replay_year_is_given():
    latest = annual_average("gb")
    value, hours = year_mean("GB", 2024)
    assert latest.gco2_per_kwh == pytest.approx(value, rel=1e-12) and hours == 8784
    assert (latest.region, latest.provider, latest.data_kind) == ("GB", "embedded", "historical")
    assert latest.basis == "mean of the 8784 hourly values of 2024 (the latest full year of the embedded data)"
    assert (latest.start, latest.end) == (datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    given = annual_average("GB", year=2022)
    assert given.gco2_per_kwh == pytest.approx(year_mean("GB", 2022)[0], rel=1e-12) and "(the year asked for)" in given.basis
    replay = annual_average("GB", provider_options={"embedded": {"replay_year": 2023.0, "signal": "direct"}})
    assert replay.gco2_per_kwh == pytest.approx(year_mean("GB", 2023, "direct")[0], rel=1e-12)
    assert "8760 hourly values of 2023 (the replay year" in replay.basis and replay.signal.startswith("direct")


def test_annual_average_refuses_what_it_cannot_answer():
    with pytest.raises(ValueError, match=r"year must be a full year of the embedded data \(2021, 2022, 2023, 2024\), got 2019"):
        annual_average("GB", year=2019)
    with pytest.raises(UnknownRegionError, match="region:13"):
        annual_average("region:13")
    with pytest.raises(ProviderOptionError, match="whole number"):
        annual_average("GB", provider_options={"embedded": {"replay_year": 2023.5}})


# --------------------------------------------------------------------------- consumers


def test_training_pricing_takes_options_per_provider_name():
    from greenkfp.components.training.pricing import price_energy

    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    pricing = price_energy(2.0, now, now + timedelta(minutes=30), "GB", "embedded", {"embedded": {"replay_year": 2023.0}})
    expected = intensity_over("GB", now, now + timedelta(minutes=30), provider_options={"embedded": {"replay_year": 2023}})
    assert pricing.intensity.gco2_per_kwh == expected.gco2_per_kwh and pricing.emissions_g == 2.0 * expected.gco2_per_kwh
    assert pricing.intensity.data_kind == "replayed_historical" and "in 2023" in pricing.intensity.note
    assert pricing.to_dict()["basis"] == expected.basis


def test_training_refuses_bad_options_before_the_fit(tmp_path):
    from greenkfp.components.data.datasets import prepare_dataset
    from greenkfp.components.training.train import train_candidate

    prepare_dataset("iris", None, tmp_path / "train.parquet", tmp_path / "test.parquet", seed=1)
    spec = {"name": "logreg", "estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 200}}
    with pytest.raises(ProviderOptionError, match="nest it"):
        train_candidate(str(tmp_path / "train.parquet"), str(tmp_path / "test.parquet"), spec,
                        str(tmp_path / "m.skops"), provider_options={"replay_year": 2023})
    assert not (tmp_path / "m.skops").exists()


def _decision(region, window_g=None, data_kind="forecast", provider="uk", now_g=None):
    from greenkfp.components.records import GateDecisionRecord, GateInputs, GateRegion, WindowRecord

    start, end = "2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+00:00"
    window = None if window_g is None else WindowRecord(start, end, window_g)
    regions = () if window is None else (GateRegion(region=region, provider=provider, data_kind=data_kind,
                                                    signal="average", best_window=window,
                                                    run_now_window=WindowRecord(start, end, now_g or window_g),
                                                    candidates=1),)
    return GateDecisionRecord(
        decided_at=start, should_run=True, action="wait", reason="test", region=region, start_at=start,
        delay_seconds=0.0, home_region=region, chosen_window=window, intensity_window_gco2_per_kwh=window_g,
        intensity_now_gco2_per_kwh=now_g, regions=regions,
        inputs=GateInputs(regions=(region,), duration_seconds=3600.0, provider=provider))


def test_sci_annual_average_uses_the_runs_replay_year_and_records_its_source():
    from greenkfp.components.sci.evaluate import inference_intensity

    value, source = inference_intensity("annual_average", _decision("DE-LU"), None, {"embedded": {"replay_year": 2023.0}})
    assert value == pytest.approx(year_mean("DE-LU", 2023)[0], rel=1e-12)
    assert source["method"] == "annual_average" and "of 2023 (the replay year" in source["basis"]
    assert source["time"] == "2023-01-01T00:00:00+00:00" and source["end"] == "2024-01-01T00:00:00+00:00"
    value, source = inference_intensity("annual_average", _decision("region:13", 123.0), None,
                                        {"embedded": {"replay_year": 2023}})
    assert value == 123.0 and source["method"] == "gate_window" and source["fallback_from"] == "annual_average"


def _training(name, energy_kwh, hourly_g):
    from greenkfp.components.records import TrainingRecord

    pricing = None if hourly_g is None else {"provider": "embedded", "data_kind": "replayed_historical"}
    return TrainingRecord.from_dict({
        "schema": TrainingRecord.SCHEMA, "accuracy": 0.9, "macro_f1": 0.9, "fit_seconds": 1.0,
        "candidate": {"name": name, "estimator": "sklearn.linear_model.LogisticRegression"},
        "energy": {"available": True, "energy_kwh": energy_kwh, "method": "modeled", "method_detail": "test"},
        "emissions": {"codecarbon_g": None, "codecarbon_basis": "test", "hourly_g": hourly_g, "hourly_pricing": pricing}})


def test_report_prices_training_at_the_gates_window_from_one_forecast_and_keeps_the_hourly_cross_check():
    from greenkfp.components.records import SciEntry, SelectionRecord
    from greenkfp.components.reporting import build_sustainability_report

    decision = _decision("GB", 100.0, data_kind="replayed_historical", provider="embedded", now_g=300.0)
    entries = [SciEntry.from_dict({"candidate": "a", "variant": "fp32", "status": "scored", "accuracy": 0.9, "sci": 1.0,
                                   "report": {"sci": {"value": 1.0, "unit": "g per 1000", "per_item_g": 1e-6},
                                              "E": {"kwh": 1e-9, "method": "modeled", "per_item_kwh": 1e-12},
                                              "methodology": "test"}})]
    selection = SelectionRecord(promote=True, chosen="a/fp32", reason="test", rule="knee")
    report = build_sustainability_report(decision, [_training("a", 0.5, 60.0), _training("b", 1.5, 120.0)], entries,
                                         selection, expected_lifetime_inferences=1e6)
    training = report.training
    assert training.scheduled_g == 2.0 * 300.0  # the gate's run-now counterfactual
    assert training.optimized_g == 2.0 * 100.0  # the same energy at the same forecast's window, not another source
    assert training.intensity_optimized_gco2_per_kwh == 100.0
    assert training.hourly_g == 180.0 and "embedded replayed historical" in training.hourly_basis
    assert "run-now" in training.scheduled_basis and "chosen-window" in training.optimized_basis
    # plan mode (the decision's default): the run did not wait, and the report says the saving was not realized
    assert training.realized is False and "did not wait" in training.optimized_basis
    assert "plan mode" in report.savings.training.basis
    saving = report.savings.training
    assert saving.percent.estimate == pytest.approx(100.0 * 2 / 3) == saving.percent.low  # the intensities' ratio
    assert saving.g.low < 400.0 < saving.g.high  # the fits' energy is one measurement: it carries an interval
    # a fit without an hourly figure: no cross-check, and the basis says which
    report = build_sustainability_report(decision, [_training("a", 0.5, 60.0), _training("b", 1.5, None)], entries,
                                         selection, expected_lifetime_inferences=1e6)
    assert report.training.hourly_g is None and "no hourly pricing for b" in report.training.hourly_basis
    assert report.training.optimized_g == 200.0


def test_cli_options_become_the_one_shape(capsys):
    from greenkfp.pipelines.cli import main

    code = main(["forecast", "--region", "GB", "--start", "2026-11-30T09:00:00Z", "--deadline", "6h", "--json",
                 "--provider-option", "embedded.signal=direct", "--replay-year", "2023"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"]["data_kind"] == "replayed_historical" and "in 2023" in out["source"]["note"]
    assert out["source"]["signal"].startswith("direct")
    assert main(["forecast", "--provider-option", "embedded.year=2023"]) == 2
    assert "unknown option 'year'" in capsys.readouterr().out
