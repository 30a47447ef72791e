"""Pipeline fragments shared by greenkfp's pipelines."""

from greenkfp.components import carbon_forecast_gate

from .platform import KubeflowSettings, configure_task

#: The carbon gate's parameters, which every carbon-aware pipeline exposes under the same names.
GATE_PARAMETERS = (
    "regions", "duration_hours", "provider", "fallback_providers", "earliest_start", "deadline",
    "max_delay_hours", "threshold", "min_savings_percent", "on_provider_failure", "mode", "energy_kwh",
    "provider_options",
)


def add_carbon_gate(platform: str, pipeline_parameters: dict, *, pipeline: str, settings: KubeflowSettings | None = None):
    """Add the carbon-forecast gate to the pipeline being defined, fed by the pipeline's own
    parameters of the same names (pass ``locals()`` from the pipeline function)."""
    gate = carbon_forecast_gate(**{name: pipeline_parameters[name] for name in GATE_PARAMETERS})
    gate.set_caching_options(False)  # a decision depends on the clock and a live forecast
    gate.set_display_name("carbon-forecast-gate")
    configure_task(gate, platform, pipeline=pipeline, role="carbon-forecast-gate", settings=settings, credentials=True)
    return gate
