"""The carbon-gated pipeline: a carbon-forecast gate, then the gated step behind ``dsl.If``.

The step behind the gate is :func:`~greenkfp.components.gate_outcome`, which stands where a
training job goes; the training issue puts ``train_with_emissions`` in its place.

Two flavours come from one definition: ``kubeflow`` adds kfp-kubernetes platform config (the
carbon API credentials from a Kubernetes secret as environment variables, pod labels for
attribution); ``vertex`` has none, since Vertex AI rejects the two-document YAML that
kfp-kubernetes produces (kubeflow/pipelines#11241). Local runs use the ``vertex`` flavour.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact

from greenkfp.components import gate_outcome

from .platform import PLATFORMS, KubeflowSettings, Steps
from .steps import add_carbon_gate

PIPELINE_NAME = "greenkfp-carbon-gate"


def build_carbon_gate_pipeline(platform: str = "vertex", settings: KubeflowSettings | None = None):
    """The carbon-gate pipeline function for ``platform`` (``kubeflow`` or ``vertex``)."""
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Ask a grid carbon-intensity forecast when to run, then run the gated step "
        "in the greenest window before the deadline, or refuse.",
    )
    def carbon_gate_pipeline(
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
    ) -> NamedTuple("Outputs", [("decision", Artifact), ("branch", str)]):
        step = Steps(platform, PIPELINE_NAME, settings)
        gate = add_carbon_gate(step, locals())
        with dsl.If(gate.outputs["should_run"] == True, name="green-window"):  # noqa: E712 (kfp condition)
            ran = gate_outcome(decision=gate.outputs["decision"], branch="run")
            step(ran, "gated-job")
        with dsl.Else(name="refused"):
            refused = gate_outcome(decision=gate.outputs["decision"], branch="refused")
            step(refused, "refusal")
        outputs = NamedTuple("Outputs", [("decision", Artifact), ("branch", str)])
        return outputs(gate.outputs["decision"], dsl.OneOf(ran.outputs["Output"], refused.outputs["Output"]))

    return carbon_gate_pipeline
