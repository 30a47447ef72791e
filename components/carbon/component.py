"""KFP adapter for the carbon-forecast gate. Standard-library imports only at module top level
besides kfp; everything the body needs is imported inside it (only the body is serialized)."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.

from typing import NamedTuple

from kfp.dsl import Artifact, Input, Markdown, Metrics, Output

from .._runtime import component


@component()
def carbon_forecast_gate(
    decision: Output[Artifact],
    metrics: Output[Metrics],
    summary: Output[Markdown],
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
    run_id: str = "",
) -> NamedTuple("GateOutputs", [("should_run", bool), ("start_at", str), ("delay_seconds", float), ("action", str), ("region", str)]):
    """Decide from a grid carbon-intensity forecast whether and when to run the next step.

    Asks the provider (then each fallback) for every candidate region's forecast, finds the
    greenest window of the job's duration before the deadline (Carbon Aware SDK semantics), and
    runs now, waits for that window, or refuses. API keys come from environment variables
    (ELECTRICITYMAPS_API_KEY, WATTTIME_USERNAME, WATTTIME_PASSWORD), on Kubeflow from a
    Kubernetes secret; never pass them as parameters.

    Args:
        regions: Candidate regions; the first is home, where "run now" is priced.
        duration_hours: Expected duration of the gated job, hours.
        provider: embedded (offline default), uk, electricitymaps, watttime or carbon_aware_sdk.
        fallback_providers: Providers tried in order when the primary fails.
        earliest_start: ISO 8601 UTC earliest start; empty means now.
        deadline: ISO 8601 UTC time by which the job must end; empty means none.
        max_delay_hours: Longest wait before starting, counted from earliest_start (now when
            empty), hours (0: run now or refuse).
        threshold: Refuse when the best window averages above it: "" (none), a number in
            gCO2eq/kWh such as "250", or a percentile of the forecast such as "p25".
        min_savings_percent: Wait only if that saves at least this percentage.
        on_provider_failure: fail_open (run now, recorded) or fail_closed (fail the task).
        mode: plan (return the start time) or wait (sleep until it, within max_delay_hours).
        energy_kwh: Estimated energy of the job, kWh, to express savings in grams (0: none).
        provider_options: Settings per provider name, e.g. {"embedded": {"replay_year": 2023}} or
            {"uk": {"base_url": "..."}}; no secrets. Pass the same to training and SCI.
        run_id: The run's id: pass dsl.PIPELINE_JOB_ID_PLACEHOLDER. It makes each run's inputs
            unique, so KFP's cache can never hand a run an earlier run's decision; required in
            wait mode and whenever earliest_start is empty (the task fails at once without it).

    Returns:
        decision: The decision record (JSON, schema greenkfp.gate_decision/v1): verdict, inputs,
            data sources, the chosen and run-now windows, delay and savings.
        metrics: should_run, delay_hours, intensities (gCO2eq/kWh) and savings, for the UI's charts.
        summary: The decision as a Markdown table, with every region and provider failure.
        should_run: True when the gated step should run (use with dsl.If).
        start_at: ISO 8601 UTC start of the chosen window.
        delay_seconds: Delay from the earliest start to start_at, seconds.
        action: run_now, wait or refuse.
        region: The region chosen.
    """
    from collections import namedtuple

    from greenkfp.components.carbon import GateError, decide, policy_from_params, write_decision_outputs
    from greenkfp.components.carbon.params import announced_sleep, check_fresh_decision

    check_fresh_decision(run_id, mode, earliest_start)
    policy = policy_from_params(
        regions, duration_hours, provider, fallback_providers, earliest_start, deadline, max_delay_hours,
        threshold, min_savings_percent, on_provider_failure, mode, energy_kwh or None, provider_options,
    )
    try:
        result = decide(policy, sleep=announced_sleep)
    except GateError as exc:
        print(exc.record.to_json() if exc.record else exc)
        raise
    record = write_decision_outputs(result, decision.path, summary.path, run_id=run_id)
    decision.metadata.update(record.artifact_metadata())
    for name, value in record.metrics().items():
        metrics.log_metric(name, value)
    print(record.markdown())
    outputs = namedtuple("GateOutputs", ["should_run", "start_at", "delay_seconds", "action", "region"])
    return outputs(record.should_run, record.start_at, record.delay_seconds, record.action, record.region)


@component()
def gate_outcome(decision: Input[Artifact], branch: str, note: Output[Markdown]) -> str:
    """Acknowledge the gate's verdict in the branch it selected.

    Stands where a gated job (or its refusal handling) goes: it reads the decision record and
    writes which branch ran, when, where and why, so the run's UI shows it.

    Args:
        decision: The gate's decision record (JSON, schema greenkfp.gate_decision/v1).
        branch: Name of the dsl.If / dsl.Else branch this task runs in.

    Returns:
        note: Which branch ran, with the decision's summary table (Markdown).
        Output: The name of the branch that ran (the pipeline's proof of which way the gate went).
    """
    from greenkfp.components._files import write_atomic
    from greenkfp.components.records import GateDecisionRecord, read_record

    record = read_record(GateDecisionRecord, decision.path)
    rows = "\n".join(f"| {k} | {v} |" for k, v in record.rows())
    write_atomic(note.path, f"# Branch `{branch}` ran\n\n| | |\n|---|---|\n{rows}\n")
    print(f"branch {branch} ran: gate action {record.action}")
    return branch
