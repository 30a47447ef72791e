"""Model files: scikit-learn models saved in skops format (no pickle) and loaded trusting only
an explicit list of types, shared by training (save), quantization (load) and serving.

Plain Python (no kfp import); its own area so that a step that only reads a model file does not
embed the training stack in a portable build.
"""

from .persistence import TRUSTED_TYPES, UntrustedModelError, load_model, save_model

__all__ = ["TRUSTED_TYPES", "UntrustedModelError", "load_model", "save_model"]
