"""Pipeline fragments shared by greenkfp's pipelines."""

from kfp import dsl

from greenkfp.components import carbon_forecast_gate
from greenkfp.components.parameters import GATE

from .platform import Steps

#: The carbon gate's parameters, which every carbon-aware pipeline exposes under the same names.
GATE_PARAMETERS = tuple(GATE)


def add_carbon_gate(step: Steps, pipeline_parameters: dict):
    """Add the carbon-forecast gate to the pipeline being defined, fed by the pipeline's own
    parameters of the same names (pass ``locals()`` from the pipeline function)."""
    gate = carbon_forecast_gate(**{name: pipeline_parameters[name] for name in GATE_PARAMETERS},
                                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)  # each run decides afresh, cache or not
    # a decision depends on the clock and a live forecast; the provider keys come from the secret
    return step(gate, "carbon-forecast-gate", cache=False, credentials=True)
