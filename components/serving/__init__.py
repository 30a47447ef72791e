"""Sustainable serving: an ONNX Runtime inference server over the Open Inference Protocol v2
(:mod:`.app`, started by ``greenkfp serve``), its micro-batching (:mod:`.batching`) and its
energy and carbon metrics (:mod:`.metrics`). Core code: no kfp import."""
