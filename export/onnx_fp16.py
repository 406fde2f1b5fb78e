"""Float16 copies of the exported graphs, for TensorRT 11 and later.

TensorRT 11 dropped weakly typed builds (`BuilderFlag.FP16`): a network computes in the types
its ONNX file declares. For an FP16 engine the graph itself must therefore be float16 inside;
this module rewrites one: float32 initializers and constants become float16, casts to float32
become casts to float16, and the graph's float32 inputs and outputs stay float32 behind a Cast,
so callers feed and read the same tensors as with the float32 graph. The one float32 operand
ONNX insists on, Resize's `scales`, is cast back to float32.
"""
from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP16_MAX = float(np.finfo(np.float16).max)
# (op type, input index) whose type ONNX fixes to float32.
FLOAT32_OPERANDS = {("Resize", 2)}


def _half(tensor: onnx.TensorProto) -> onnx.TensorProto:
    values = numpy_helper.to_array(tensor)
    # Clamped, not overflowed to inf: large-magnitude constants (e.g. masking values) stay finite.
    half = np.clip(values, -FP16_MAX, FP16_MAX).astype(np.float16)
    return numpy_helper.from_array(half, tensor.name)


def convert_to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float16 copy of `model` with the same float32 inputs and outputs."""
    model = copy.deepcopy(model)
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(_half(init))
    nodes = []
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                attr.t.CopyFrom(_half(attr.t))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT:
                attr.i = TensorProto.FLOAT16
        for index, name in enumerate(node.input):
            if (node.op_type, index) in FLOAT32_OPERANDS and name:
                cast = f"{name}__as_float32_for_{node.name or node.op_type}"
                nodes.append(helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT))
                node.input[index] = cast
        nodes.append(node)

    float_inputs = {i.name for i in graph.input if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    head = []
    for name in float_inputs:
        half = f"{name}__float16"
        head.append(helper.make_node("Cast", [name], [half], to=TensorProto.FLOAT16))
        for node in nodes:
            node.input[:] = [half if x == name else x for x in node.input]
    tail = []
    for out in graph.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = f"{out.name}__float16"
        for node in nodes:
            node.output[:] = [half if x == out.name else x for x in node.output]
            node.input[:] = [half if x == out.name else x for x in node.input]
        tail.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT))
    del graph.node[:]
    graph.node.extend(head + nodes + tail)
    del graph.value_info[:]  # stale float32 annotations; shape inference recomputes them
    return model
