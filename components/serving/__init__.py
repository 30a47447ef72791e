"""Sustainable serving: the ONNX Runtime inference server (``greenkfp serve``) and the manifests
that deploy it (``manifests``)."""
