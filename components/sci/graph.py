"""Hardware-free figures of an ONNX model, read from its graph: deterministic, no benchmark.

* ``macs``: multiply-accumulates per inference (one input row). MatMul, Gemm and their
  quantized forms (MatMulInteger, QLinearMatMul, QGemm, DynamicQuantizeMatMul, FusedMatMul)
  count ``K x N`` for a ``K x N`` weight (an initializer, also behind DequantizeLinear, Cast or
  Transpose); Conv counts the weight's size (``M x C/g x kh x kw``) times the output positions
  when shape inference knows them, else once; ``LinearClassifier`` / ``LinearRegressor``
  (ai.onnx.ml) count their coefficients.
* ``tree_comparisons``: for ``TreeEnsembleClassifier`` / ``TreeEnsembleRegressor``, the most
  comparisons one row can need: the sum over trees of each tree's depth (branch nodes on the
  longest root-to-leaf path). Counted apart from ``macs`` (a comparison is not a MAC).
* ``operations``: ``macs + tree_comparisons`` (:func:`greenkfp.components.records.operations`,
  re-exported here), the per-inference operation
  count that is comparable across model families: a tree ensemble has 0 MACs, so MACs alone
  would make every tree look free. The selection's tie-break compares this figure.
* ``weight_bytes``: bytes of the weights: every initializer and Constant tensor (elements x
  element size), plus the numeric array attributes of ai.onnx.ml operators (floats 4 bytes,
  ints 8 bytes), where trees and linear models keep theirs.

``onnx`` is imported when called. No kfp import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..records import operations  # defined with the records the figures travel in (SciEntry)

__all__ = ["GraphFigures", "graph_figures", "operations"]

_MATMUL_LIKE = {"MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "QGemm", "DynamicQuantizeMatMul", "FusedMatMul"}
_PASS_THROUGH = {"DequantizeLinear", "Cast", "Identity", "QuantizeLinear"}
_TREES = {"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"}
_LINEAR_ML = {"LinearClassifier", "LinearRegressor"}

BASIS = ("macs: multiply-accumulates per row from weight shapes (MatMul/Gemm and quantized forms: K x N; Conv: "
         "weight size x output positions; LinearClassifier/Regressor: coefficients); tree_comparisons: sum over "
         "trees of the tree's depth (most comparisons one row can need); operations: macs + tree_comparisons "
         "per row (comparable across model families; the selection's tie-break uses it); weight_bytes: "
         "initializers and Constant tensors (elements x element size) plus ai.onnx.ml numeric array attributes")


@dataclass(frozen=True)
class GraphFigures:
    macs: int
    tree_comparisons: int
    tree_nodes: int
    weight_bytes: int

    @property
    def operations(self) -> int:
        """``macs + tree_comparisons`` (see :func:`operations`)."""
        return operations(self.macs, self.tree_comparisons)

    def to_dict(self) -> dict:
        return {"macs": self.macs, "tree_comparisons": self.tree_comparisons, "tree_nodes": self.tree_nodes,
                "weight_bytes": self.weight_bytes, "basis": BASIS}


def _load(model: Any):
    import onnx

    if hasattr(model, "graph"):
        return model
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    if isinstance(model, (str, os.PathLike)):
        return onnx.load(os.fspath(model))
    raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, got {type(model).__name__}")


def _tensor_bytes(tensor) -> int:
    from onnx import helper

    count = 1
    for d in tensor.dims:
        count *= int(d)
    return count * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize


def _tree_depths(node) -> tuple[int, int]:
    """(sum over trees of depth in branch nodes, number of nodes)."""
    attrs = {a.name: a for a in node.attribute}
    tree_ids = list(attrs["nodes_treeids"].ints) if "nodes_treeids" in attrs else []
    node_ids = list(attrs["nodes_nodeids"].ints) if "nodes_nodeids" in attrs else []
    true_ids = list(attrs["nodes_truenodeids"].ints) if "nodes_truenodeids" in attrs else []
    false_ids = list(attrs["nodes_falsenodeids"].ints) if "nodes_falsenodeids" in attrs else []
    modes = [m.decode() if isinstance(m, bytes) else m for m in attrs["nodes_modes"].strings] \
        if "nodes_modes" in attrs else []
    if not tree_ids:
        return 0, 0
    children: dict[tuple[int, int], tuple[int, ...]] = {}
    for t, n, a, b, m in zip(tree_ids, node_ids, true_ids, false_ids, modes):
        children[(t, n)] = () if m == "LEAF" else (a, b)
    total = 0
    for tree in sorted(set(tree_ids)):
        depth, level = 0, [0]
        while True:
            nxt = [c for n in level for c in children.get((tree, n), ())]
            if not nxt:
                break
            depth, level = depth + 1, nxt
        total += depth
    return total, len(node_ids)


def graph_figures(model: Any) -> GraphFigures:
    """The :class:`GraphFigures` of an ONNX model (a path, bytes or an ``onnx.ModelProto``)."""
    from onnx import shape_inference

    proto = _load(model)
    try:
        inferred = shape_inference.infer_shapes(proto)
    except Exception:  # shape inference is a help for Conv only
        inferred = proto
    graph = proto.graph
    shapes: dict[str, tuple[int, ...]] = {t.name: tuple(int(d) for d in t.dims) for t in graph.initializer}
    weight_bytes = sum(_tensor_bytes(t) for t in graph.initializer)
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    shapes[node.output[0]] = tuple(int(d) for d in a.t.dims)
                    weight_bytes += _tensor_bytes(a.t)
    value_shapes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.output):
        dims = info.type.tensor_type.shape.dim
        value_shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    # weights reach their operator through DequantizeLinear, Cast or Transpose: follow them
    for node in graph.node:
        if node.input and node.input[0] in shapes and node.output:
            if node.op_type in _PASS_THROUGH:
                shapes.setdefault(node.output[0], shapes[node.input[0]])
            elif node.op_type == "Transpose" and len(shapes[node.input[0]]) == 2:
                shapes.setdefault(node.output[0], shapes[node.input[0]][::-1])
    macs = comparisons = nodes = 0
    for node in graph.node:
        if node.op_type in _MATMUL_LIKE:
            weights = [shapes[i] for i in node.input if i in shapes and len(shapes[i]) == 2]
            if weights:
                k, n = weights[0]
                macs += k * n
        elif node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in shapes:
            size = 1
            for d in shapes[node.input[1]]:
                size *= d
            out = value_shapes.get(node.output[0], ())
            positions = 1
            for d in out[2:]:
                positions *= d if isinstance(d, int) and d > 0 else 1
            macs += size * positions
        elif node.op_type in _LINEAR_ML:
            coefficients = next((a.floats for a in node.attribute if a.name == "coefficients"), [])
            macs += len(coefficients)
        elif node.op_type in _TREES:
            depth, count = _tree_depths(node)
            comparisons += depth
            nodes += count
        if node.domain == "ai.onnx.ml":
            for a in node.attribute:
                weight_bytes += 4 * len(a.floats) + 8 * len(a.ints)
    return GraphFigures(macs=int(macs), tree_comparisons=int(comparisons), tree_nodes=int(nodes),
                        weight_bytes=int(weight_bytes))
