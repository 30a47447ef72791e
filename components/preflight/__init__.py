"""Check a run's options before anything expensive: each value by the rules of the area that will
use it, so that a typo fails the run at once, not after the dataset, the gate's wait and the
training (plain Python, no kfp import; the KFP step is ``component.py``)."""

from .options import check_training_options

__all__ = ["check_training_options"]
