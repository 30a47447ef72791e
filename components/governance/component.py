"""KFP adapters for carbon budgets: ask the gatekeeper before a run spends anything, and tell it
what the run emitted at the end. Standard-library imports only at module top level besides kfp;
everything the bodies need is imported inside them (only the body is serialized)."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.

from typing import NamedTuple

from kfp.dsl import Artifact, Input, Markdown, Output

from .._runtime import component


@component()
def carbon_budget_gate(
    reservation: Output[Artifact],
    summary: Output[Markdown],
    gatekeeper_url: str,
    pipeline: str,
    run_id: str,
    team_token_env: str = "GREENKFP_GATEKEEPER_TOKEN",
    energy_kwh: float = 0.0,
    steps: int = 1,
    hardware_profile: str = "n2-standard-4",
    regions: list = ["GB"],
    period: str = "",
) -> NamedTuple("BudgetGateOutputs", [("reserved_g", float), ("remaining_g", float), ("review_required", bool)]):
    """Reserve the run's estimated carbon in its team's monthly budget, as the pipeline's first
    step: the gatekeeper estimates the run, asks the budget policy and reserves atomically. A
    refusal fails this task (and so the run) with the policy's and the ledger's reasons. For
    runs that do not go through the gatekeeper's KFP API; the team's token comes from an
    environment variable (on Kubeflow, from a Kubernetes secret), never from a parameter.

    Args:
        gatekeeper_url: The gatekeeper's address, such as http://greenkfp-gatekeeper.kubeflow:8888.
        pipeline: The pipeline's name: the gatekeeper estimates from the team's settled runs of it.
        run_id: The run's id: pass dsl.PIPELINE_JOB_ID_PLACEHOLDER (asking again with it replays the first answer).
        team_token_env: The environment variable holding the team's gatekeeper token.
        energy_kwh: Expected energy of the run, kWh (0: unknown; the gatekeeper then uses the
            team's history or a per-step default).
        steps: The pipeline's container steps, for the per-step default.
        hardware_profile: The hardware preset the steps are modeled on.
        regions: Candidate regions; the first (home) is where the run is priced.
        period: The budget's month, YYYY-MM (UTC); empty: the current month.

    Returns:
        reservation: The ledger's budget decision for the run (JSON, schema greenkfp.budget_decision/v1).
        summary: The decision for people: granted, the estimate and how it was made, what remains.
        reserved_g: Grams CO2eq reserved for the run.
        remaining_g: The team's remaining budget after the reservation, grams CO2eq.
        review_required: Whether the grant went into a soft budget's overdraft (the board reviews it).
    """
    from collections import namedtuple

    from greenkfp.components._files import write_atomic
    from greenkfp.components.governance.client import GatekeeperClient, admission_markdown, token_from_env
    from greenkfp.components.records import Reservation, write_record

    with GatekeeperClient(gatekeeper_url, token_from_env(team_token_env)) as gatekeeper:
        answer = gatekeeper.admit(pipeline=pipeline, run_id=run_id, energy_kwh=energy_kwh or None, steps=steps,
                                  hardware_profile=hardware_profile or None, region=(regions or [None])[0],
                                  period=period or None)
    record = Reservation.from_dict(answer["reservation"])
    write_record(record, reservation.path)
    reservation.metadata.update(schema=record.SCHEMA, granted=record.granted, units="g CO2eq")
    write_atomic(summary.path, admission_markdown(answer))
    outputs = namedtuple("BudgetGateOutputs", ["reserved_g", "remaining_g", "review_required"])
    return outputs(float(answer["reserved_g"]), float(answer["remaining_g"]), bool(answer["review_required"]))


@component()
def settle_carbon_budget(
    report_json: Input[Artifact],
    summary: Output[Markdown],
    gatekeeper_url: str,
    run_id: str,
    team_token_env: str = "GREENKFP_GATEKEEPER_TOKEN",
    pipeline: str = "",
) -> float:
    """Report a finished run's actual emissions to the gatekeeper, which settles its reservation
    in the team's budget (what was reserved but not emitted goes back to the budget). The grams
    are the training fits' energy priced at the hours they ran, from the sustainability report.
    The settlement also carries the run's facts (schema greenkfp.run_facts/v1: savings by lever,
    the promoted model against its baseline, the gate's delay), which the audit and the quarterly
    report read from the ledger.

    Args:
        report_json: The run's sustainability report (schema greenkfp.sustainability_report/v1).
        gatekeeper_url: The gatekeeper's address (the one the run's carbon_budget_gate asked).
        run_id: The run's id, as given to carbon_budget_gate: dsl.PIPELINE_JOB_ID_PLACEHOLDER.
        team_token_env: The environment variable holding the team's gatekeeper token.
        pipeline: The pipeline's name, as given to carbon_budget_gate (empty: the ledger takes the
            one of the run's reservation).

    Returns:
        summary: The settlement for people: grams settled, where the figure comes from.
        Output: The grams CO2eq settled.
    """
    from greenkfp.components._files import write_atomic
    from greenkfp.components.governance.client import (
        GatekeeperClient,
        run_emissions,
        run_facts,
        settlement_markdown,
        token_from_env,
    )
    from greenkfp.components.records import SustainabilityReport, read_record

    report = read_record(SustainabilityReport, report_json.path)
    emitted = run_emissions(report)
    with GatekeeperClient(gatekeeper_url, token_from_env(team_token_env)) as gatekeeper:
        answer = gatekeeper.settle(run_id, emitted.grams, run_facts(report, pipeline))
    write_atomic(summary.path, settlement_markdown(answer, emitted))
    return emitted.grams


@component()
def carbon_budget_off(summary: Output[Markdown], stage: str):
    """Say that this run asks no carbon budget (the pipeline's gatekeeper_url is empty): the
    other branch of the budget steps, so every run records which branch it took.

    Args:
        stage: Which budget step this stands in for: admission or settlement.

    Returns:
        summary: One line for people: no gatekeeper, so no reservation or settlement.
    """
    from greenkfp.components._files import write_atomic

    write_atomic(summary.path, f"# Carbon budget: off\n\nNo gatekeeper_url was given: this run has no carbon-budget "
                               f"{stage}.\n")
