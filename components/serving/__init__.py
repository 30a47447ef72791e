"""Sustainable serving: an ONNX Runtime inference server over the Open Inference Protocol v2
(:mod:`.app`, started by ``greenkfp serve``), its micro-batching (:mod:`.batching`), its energy and
carbon metrics (:mod:`.metrics`), and the manifests that deploy it (:mod:`.manifests`). Core code:
no kfp import."""
