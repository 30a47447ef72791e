"""greenkfp's KFP components, each under one public name.

The components are loaded lazily (PEP 562): inside a running component, kfp's runtime
``kfp.dsl`` cannot build components, and the component bodies import only the plain-Python
cores (``greenkfp.components.carbon`` ...), which must not drag the definitions in.
"""

import importlib

from ._runtime import __version__

# public name -> module that defines it
_COMPONENTS = {
    "carbon_forecast_gate": ".carbon.component",
    "gate_outcome": ".carbon.component",
    "load_dataset": ".data.component",
    "train_with_emissions": ".training.component",
    "resolve_candidates": ".training.component",
    "check_training_options": ".preflight.component",
    "convert_and_quantize": ".quantization.component",
    "evaluate_sci": ".sci.component",
    "benchmark_variants": ".sci.component",
    "select_pareto_model": ".selection.component",
    "sustainability_report": ".reporting.component",
    "carbon_budget_gate": ".governance.component",
    "settle_carbon_budget": ".governance.component",
    "carbon_budget_off": ".governance.component",
    "deploy_model": ".serving.component",
}

__all__ = ["__version__", *_COMPONENTS]


def __getattr__(name: str):
    if name in _COMPONENTS:
        return getattr(importlib.import_module(_COMPONENTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
