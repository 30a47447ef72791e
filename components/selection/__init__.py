"""Model selection: the Pareto front, constraints, selection rules and the HTML report.

Plain Python (no kfp import): a KFP adapter calls these.

Typical use::

    from greenkfp.components.selection import Constraints, select_model, selection_html

    decision = select_model(candidates, constraints=Constraints(min_accuracy=0.9), rule="knee",
                            on_none="block")
    record = decision.to_record()          # a SelectionRecord, schema greenkfp.selection/v1
    page = selection_html(record)          # self-contained HTML with the plots
    if decision.promote:
        ...  # copy decision.chosen.model_uri to the Model output

``pareto_front(points, directions)`` is the front on its own: the sorted indices of the rows no
other row dominates.
"""

from .intervals import TIE_BREAK, interval, interval_dominates, interval_front, tie_key
from .pareto import DIRECTIONS, ParetoFront, dominates, dominators, pareto_front, pareto_front_details
from .select import (
    ACCURACY,
    DEFAULT_OBJECTIVES,
    LATENCY_P95,
    RECORD_SCHEMA,
    RULES,
    SCI,
    TRAINING_EMISSIONS,
    Assessment,
    Candidate,
    Constraints,
    NoEligibleCandidateError,
    Objective,
    SelectionDecision,
    SelectionError,
    as_candidates,
    as_objectives,
    select_model,
)



def __getattr__(name: str):
    """``selection_html`` loads the report module (and matplotlib's helpers) on first use: the
    selection rules, which the pre-flight checks import, do not need it, and a portable build
    of those embeds only what they run (``greenkfp.components._runtime.required_modules``)."""
    if name == "selection_html":
        from .report import selection_html

        return selection_html
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCURACY",
    "Assessment",
    "Candidate",
    "Constraints",
    "DEFAULT_OBJECTIVES",
    "DIRECTIONS",
    "LATENCY_P95",
    "NoEligibleCandidateError",
    "Objective",
    "ParetoFront",
    "RECORD_SCHEMA",
    "RULES",
    "SCI",
    "SelectionDecision",
    "SelectionError",
    "TIE_BREAK",
    "TRAINING_EMISSIONS",
    "as_candidates",
    "as_objectives",
    "dominates",
    "dominators",
    "interval",
    "interval_dominates",
    "interval_front",
    "pareto_front",
    "pareto_front_details",
    "select_model",
    "selection_html",
    "tie_key",
]
