"""Training: CodeCarbon-instrumented fits, estimator specs (models are saved by greenkfp.components.models).

The energy side (hardware profile, CodeCarbon tracker) is ``greenkfp.components.energy``.
Plain Python (no kfp import): the KFP adapter lives in ``component.py``.
"""
