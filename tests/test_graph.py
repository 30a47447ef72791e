"""Hardware-free figures of hand-built ONNX graphs: exact MAC, comparison and byte counts."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from greenkfp.components.sci import graph_figures

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _model(nodes, initializers, n_in=3, n_out=4, opset=17, extra_domains=()):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_in])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, n_out])], initializer=initializers)
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in extra_domains]
    return helper.make_model(graph, opset_imports=imports)


def test_two_layer_mlp_counts_k_times_n_per_layer_and_every_weight_byte():
    w1 = numpy_helper.from_array(np.ones((3, 5), np.float32), "W1")
    b1 = numpy_helper.from_array(np.zeros(5, np.float32), "B1")
    w2 = numpy_helper.from_array(np.ones((5, 4), np.float32), "W2")
    nodes = [helper.make_node("MatMul", ["X", "W1"], ["H"]), helper.make_node("Add", ["H", "B1"], ["HB"]),
             helper.make_node("Relu", ["HB"], ["R"]), helper.make_node("MatMul", ["R", "W2"], ["Y"])]
    figures = graph_figures(_model(nodes, [w1, b1, w2]))
    assert figures.macs == 3 * 5 + 5 * 4  # 35
    assert figures.weight_bytes == (15 + 5 + 20) * 4  # 160
    assert figures.tree_comparisons == 0


def test_gemm_with_transposed_weight_and_an_int8_weight_behind_dequantize():
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")  # Gemm transB: N x K
    q = numpy_helper.from_array(np.ones((3, 4), np.int8), "Q")
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "S")
    zero = numpy_helper.from_array(np.array(0, np.int8), "Z")
    gemm = _model([helper.make_node("Gemm", ["X", "W"], ["Y"], transB=1)], [w])
    assert graph_figures(gemm).macs == 12 and graph_figures(gemm).weight_bytes == 48
    qdq = _model([helper.make_node("DequantizeLinear", ["Q", "S", "Z"], ["W"]),
                  helper.make_node("MatMul", ["X", "W"], ["Y"])], [q, scale, zero])
    figures = graph_figures(qdq)
    assert figures.macs == 12
    assert figures.weight_bytes == 12 * 1 + 4 + 1  # int8 weights, a float scale, an int8 zero point


def test_tree_ensemble_counts_the_deepest_path_of_each_tree_and_its_nodes():
    # tree 0: root -> (leaf, node 2 -> (leaf, leaf)): depth 2; tree 1: a stump, depth 1
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "Y"], domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1], nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 0, 1, 0, 0, 2, 0, 0], nodes_values=[0.5, 0, 0.2, 0, 0, 0.1, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 3, 0, 0, 1, 0, 0], nodes_falsenodeids=[2, 0, 4, 0, 0, 2, 0, 0],
        class_treeids=[0, 0, 0, 1, 1], class_nodeids=[1, 3, 4, 1, 2], class_ids=[0, 1, 0, 1, 0],
        class_weights=[1.0, 1.0, 1.0, 1.0, 1.0], classlabels_int64s=[0, 1])
    graph = helper.make_graph(
        [node], "trees", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    figures = graph_figures(model)
    assert figures.tree_comparisons == 2 + 1
    assert figures.tree_nodes == 8
    assert figures.macs == 0
    # the trees' numeric attributes are their weights: int lists nodes_treeids, _nodeids, _featureids,
    # _truenodeids, _falsenodeids (8 each), class_treeids, _nodeids, _ids (5 each), classlabels (2);
    # float lists nodes_values (8) and class_weights (5)
    assert figures.weight_bytes == 8 * (8 * 5 + 5 * 3 + 2) + 4 * (8 + 5)


def test_linear_classifier_counts_its_coefficients_and_a_real_skl2onnx_model_matches_its_shapes(tmp_path):
    from sklearn.datasets import make_classification
    from sklearn.neural_network import MLPClassifier
    from skl2onnx import to_onnx

    X, y = make_classification(60, 7, n_informative=4, n_classes=3, random_state=0)
    mlp = MLPClassifier((6,), max_iter=500, random_state=0).fit(X, y)
    path = tmp_path / "mlp.onnx"
    path.write_bytes(to_onnx(mlp, X[:1].astype(np.float32)).SerializeToString())
    figures = graph_figures(str(path))
    assert figures.macs == 7 * 6 + 6 * 3
    assert figures.weight_bytes >= (7 * 6 + 6 + 6 * 3 + 3) * 4
    node = helper.make_node("LinearClassifier", ["X"], ["label", "Y"], domain="ai.onnx.ml",
                            coefficients=[0.1] * 12, intercepts=[0.0] * 4, classlabels_ints=[0, 1, 2, 3])
    graph = helper.make_graph([node], "lin", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                               helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 1)])
    linear = graph_figures(onnx.load_from_string(model.SerializeToString()))
    assert linear.macs == 12
    assert linear.weight_bytes == 4 * (12 + 4) + 8 * 4
