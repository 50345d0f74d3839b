"""Reference runs of Magenta's shipped ONNX files with onnxruntime, for the torch port's tests.

Two references: the files as shipped (int8 QDQ), and the same graphs with their quantisation folded
away (weights dequantised, every activation Quantize/Dequantize pair made an identity), which is
the float network the port implements. Both get symbolic batch, height and width, and every
``Reshape`` constant ``[1, C, 1, 1]`` becomes ``[-1, C, 1, 1]`` so batches work.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from consumer.engines.catalogue import packaged_path
from consumer.engines.magenta import _dequantize


def _symbolic(model: onnx.ModelProto) -> None:
    """Batch symbolic everywhere; height and width symbolic on images (NHWC, 3 channels)."""
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        dims[0].dim_param = "batch"
        if dims[3].dim_value == 3:
            dims[1].dim_param, dims[2].dim_param = "height", "width"
    del model.graph.value_info[:]
    shapes = {node.input[1] for node in model.graph.node if node.op_type == "Reshape"}
    for init in model.graph.initializer:
        if init.name in shapes:  # [1, C, 1, 1] → [-1, C, 1, 1]: the batch passes through
            array = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.array([-1, *array[1:]], np.int64), init.name))


def _fold(model: onnx.ModelProto) -> None:
    graph = model.graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in arrays:
            graph.initializer.append(numpy_helper.from_array(_dequantize(node, arrays), node.output[0]))
        elif node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            nodes.append(helper.make_node("Identity", [node.input[0]], list(node.output), name=node.name))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def session(name: str, *, folded: bool) -> ort.InferenceSession:
    """An onnxruntime session of catalogue file ``name`` (int8 as shipped, or folded to float)."""
    model = onnx.load(str(packaged_path(name)))
    _symbolic(model)
    if folded:
        _fold(model)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def predict(sess: ort.InferenceSession, styles_nchw: np.ndarray) -> np.ndarray:
    """N×100 style vectors from N×3×256×256 images in [0, 1]."""
    out = sess.run(None, {sess.get_inputs()[0].name: styles_nchw.transpose(0, 2, 3, 1).astype(np.float32)})[0]
    return out.reshape(len(styles_nchw), -1)


def transform(sess: ort.InferenceSession, content_nchw: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """N×3×H×W images in [0, 1] (H, W multiples of 4) rendered with N×100 vectors."""
    names = [i.name for i in sess.get_inputs()]
    feeds = {
        names[0]: content_nchw.transpose(0, 2, 3, 1).astype(np.float32),
        names[1]: vectors.reshape(len(vectors), 1, 1, -1).astype(np.float32),
    }
    return sess.run(None, feeds)[0].transpose(0, 3, 1, 2)


def model_path(name: str) -> Path:
    return packaged_path(name)
