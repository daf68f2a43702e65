"""The Whisper-base encoder on ONNX Runtime, with every layer's states within reach.

CTranslate2's ``encode`` returns only the last layer, which Whisper trained for its text
decoder; the middle layers carry more of how something is said. So ser runs the encoder itself:

* the weights are read from the same verified ``model.bin`` (CTranslate2 format, float16) that
  the weight packages provide — nothing is downloaded and nothing is duplicated;
* the graph (convolutions, sinusoidal positions, pre-LN transformer layers) is built with the
  ``onnx`` helpers **without weights**, stopping after the deepest layer asked for; ONNX Runtime
  receives the weights at session creation (``add_external_initializers``). A bundle ships
  its small weight-less graph, so prediction needs neither torch nor ``onnx``;
* each output is one state pooled over time: mean and standard deviation (1,024 numbers).

State ``i`` for ``i`` in 0..5 is the residual stream after ``i`` transformer layers (0: after the
convolutions and positions); state 6 is the last layer after the final layer norm — what
CTranslate2 returns (checked equal in the tests).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Collection

import numpy as np

from ser.common import ConfigError, EncoderUnavailableError

N_LAYERS, D_MODEL, N_HEADS, N_MELS = 6, 512, 8, 80
FINAL = N_LAYERS  # the state after the last layer's final layer norm
#: The ONNX opset of the graph (ReduceMean takes its axes as an input from 18).
OPSET = 18


def read_ct2_variables(path: str | Path, prefix: str = "encoder/",
                       names: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 ``model.bin`` (format version 6) whose names start with
    ``prefix`` (and, given ``names``, are among them once the prefix is dropped), as
    float16/float32/int arrays. Only those are read; the rest is skipped."""
    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    out: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        def unpack(fmt):
            size = struct.calcsize("<" + fmt)
            return struct.unpack("<" + fmt, f.read(size))[0]

        def string():
            return f.read(unpack("H")).rstrip(b"\0").decode()

        version = unpack("I")
        if version != 6:
            raise ValueError(f"{path}: CTranslate2 model format {version}, expected 6")
        spec, _revision = string(), unpack("I")
        if spec != "WhisperSpec":
            raise ValueError(f"{path}: a {spec} model, expected WhisperSpec")
        for _ in range(unpack("I")):
            name = string()
            shape = tuple(unpack("I") for _ in range(unpack("B")))
            dtype, nbytes = dtypes.get(unpack("B")), unpack("I")
            short = name[len(prefix):]
            if not name.startswith(prefix) or dtype is None or (names is not None and short not in names):
                f.seek(nbytes, 1)
                continue
            out[short] = np.frombuffer(f.read(nbytes), dtype=dtype).reshape(shape)
    return out


def weight_layout(depth: int) -> list[tuple[str, str, tuple[int, ...], bool]]:
    """The one description of the weights a graph of ``depth`` layers uses: (name in the graph,
    name in CTranslate2's encoder, shape there, transposed for the graph's ``x @ W + b``)."""
    d, ff = D_MODEL, 4 * D_MODEL
    rows = [("conv1_w", "conv1/weight", (d, N_MELS, 3), False), ("conv1_b", "conv1/bias", (d,), False),
            ("conv2_w", "conv2/weight", (d, d, 3), False), ("conv2_b", "conv2/bias", (d,), False),
            ("positions", "position_encodings/encodings", (1500, d), False)]
    for i in range(min(depth, N_LAYERS)):
        src = f"layer_{i}/"
        for part, name in (("self_attention/layer_norm", "ln1"), ("ffn/layer_norm", "ln2")):
            rows += [(f"l{i}_{name}_g", f"{src}{part}/gamma", (d,), False),
                     (f"l{i}_{name}_b", f"{src}{part}/beta", (d,), False)]
        for part, name, shape in (("self_attention/linear_0", "qkv", (3 * d, d)),
                                  ("self_attention/linear_1", "out", (d, d)),
                                  ("ffn/linear_0", "fc1", (ff, d)), ("ffn/linear_1", "fc2", (d, ff))):
            rows += [(f"l{i}_{name}_w", f"{src}{part}/weight", shape, True),
                     (f"l{i}_{name}_b", f"{src}{part}/bias", shape[:1], False)]
    if depth > N_LAYERS:
        rows += [("ln_post_g", "layer_norm/gamma", (d,), False),
                 ("ln_post_b", "layer_norm/beta", (d,), False)]
    return rows


def encoder_weights(variables: dict[str, np.ndarray], depth: int) -> dict[str, np.ndarray]:
    """The float32 initializers of a graph of ``depth`` layers, named as :func:`build_graph`
    expects (see :func:`weight_layout`)."""
    out = {}
    for name, source, shape, transposed in weight_layout(depth):
        w = variables[source]
        if w.shape != shape:
            raise ValueError(f"encoder/{source} has shape {w.shape}, expected {shape}")
        out[name] = np.ascontiguousarray(w.T if transposed else w, dtype=np.float32)
    return out


def _is_linear(name: str) -> bool:
    """The linear layers' weights: int8 in an int8 graph (activations are quantised at run
    time, per batch, by the graph itself: dynamic quantisation)."""
    return name.endswith(("_qkv_w", "_out_w", "_fc1_w", "_fc2_w"))


def quantised_weights(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An int8 graph's initializers from the float32 ones: each linear weight W (in, out)
    becomes W_q int8 and W_s float32 (out,) with W = W_q * W_s approximately (symmetric, one
    scale per output column, -127..127); the rest stay float32. Deterministic: training and
    serving compute the same int8 weights."""
    out = {}
    for name, w in weights.items():
        if not _is_linear(name):
            out[name] = w
            continue
        scale = np.maximum(np.abs(w).max(axis=0), 1e-12).astype(np.float32) / 127.0
        out[name + "_q"] = np.clip(np.rint(w / scale), -127, 127).astype(np.int8)
        out[name + "_s"] = scale.astype(np.float32)
    return out


def graph_depth(states: tuple[int, ...]) -> int:
    """Layers to run for the wanted states (7 = all six plus the final layer norm)."""
    if not states or any(not 0 <= s <= FINAL for s in states) or len(set(states)) != len(states):
        raise ConfigError(f"encoder states must be distinct numbers in 0..{FINAL}, not {states}")
    deepest = max(states)
    return N_LAYERS + 1 if deepest == FINAL else deepest


def build_graph(states: tuple[int, ...], int8: bool = False) -> bytes:
    """The weight-less ONNX graph: input ``mel`` (batch, 80, frames), outputs ``state{i}``
    (batch, 1024) = mean and std over time of state ``i`` for each wanted state. ``int8``: the
    linear layers multiply int8 weights by activations quantised per batch (dynamic
    quantisation; weights from :func:`quantised_weights`). Needs ``onnx`` (training extra);
    bundles carry the result."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        raise EncoderUnavailableError(
            "building the encoder graph needs the onnx package (training extra): "
            "pip install 'ser[train]'; a trained bundle carries its graph") from None

    depth = graph_depth(states)
    nodes, consts = [], []
    counter = iter(range(10**6))

    def op(kind, inputs, **attrs):
        out = f"t{next(counter)}"
        nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def const(values, dtype=np.int64):
        name = f"c{next(counter)}"
        consts.append(onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    sqrt_half, half, one = const(0.7071067811865476, np.float32), const(0.5, np.float32), \
        const(1.0, np.float32)

    def gelu(x):  # Whisper's exact GELU; ORT fuses this pattern
        return op("Mul", [op("Mul", [x, half]), op("Add", [op("Erf", [op("Mul", [x, sqrt_half])]), one])])

    def layer_norm(x, g, b):
        return op("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-5)

    def linear(x, name):
        if not int8:
            return op("Add", [op("MatMul", [x, f"{name}_w"]), f"{name}_b"])
        xq, xs, xzp = (f"t{next(counter)}" for _ in range(3))
        nodes.append(helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xzp]))
        product = op("Cast", [op("MatMulInteger", [xq, f"{name}_w_q", xzp])], to=TensorProto.FLOAT)
        scaled = op("Mul", [product, op("Mul", [xs, f"{name}_w_s"])])
        return op("Add", [scaled, f"{name}_b"])

    def pooled(x):  # (B, T, D) -> (B, 2D): mean and population std over time
        mean = op("ReduceMean", [x, const([1])], keepdims=0)
        centred = op("Sub", [x, op("Unsqueeze", [mean, const([1])])])
        var = op("ReduceMean", [op("Mul", [centred, centred]), const([1])], keepdims=0)
        return op("Concat", [mean, op("Sqrt", [var])], axis=1)

    heads_shape = const([0, 0, N_HEADS, D_MODEL // N_HEADS])
    merge_shape = const([0, 0, D_MODEL])
    scale = const(1.0 / np.sqrt(D_MODEL // N_HEADS), np.float32)

    def attention(x, i):
        qkv = linear(x, f"l{i}_qkv")
        q, k, v = (op("Transpose", [op("Reshape", [op("Slice", [qkv, const([j * D_MODEL]),
                                                                 const([(j + 1) * D_MODEL]),
                                                                 const([2])]), heads_shape])],
                      perm=[0, 2, 1, 3]) for j in range(3))
        scores = op("Mul", [op("MatMul", [q, op("Transpose", [k], perm=[0, 1, 3, 2])]), scale])
        context = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        merged = op("Reshape", [op("Transpose", [context], perm=[0, 2, 1, 3]), merge_shape])
        return linear(merged, f"l{i}_out")

    x = gelu(op("Conv", ["mel", "conv1_w", "conv1_b"], pads=[1, 1], strides=[1]))
    x = gelu(op("Conv", [x, "conv2_w", "conv2_b"], pads=[1, 1], strides=[2]))
    x = op("Transpose", [x], perm=[0, 2, 1])  # (B, T, D)
    frames = op("Slice", [op("Shape", [x]), const([1]), const([2])])
    x = op("Add", [x, op("Slice", ["positions", const([0]), frames, const([0])])])
    found = {0: x}
    for i in range(min(depth, N_LAYERS)):
        x = op("Add", [x, attention(layer_norm(x, f"l{i}_ln1_g", f"l{i}_ln1_b"), i)])
        h = gelu(linear(layer_norm(x, f"l{i}_ln2_g", f"l{i}_ln2_b"), f"l{i}_fc1"))
        x = op("Add", [x, linear(h, f"l{i}_fc2")])
        found[i + 1] = x
    if depth > N_LAYERS:
        found[FINAL] = layer_norm(x, "ln_post_g", "ln_post_b")
    outputs = []
    for s in states:
        nodes.append(helper.make_node("Identity", [pooled(found[s])], [f"state{s}"]))
        outputs.append(helper.make_tensor_value_info(f"state{s}", TensorProto.FLOAT,
                                                     ["batch", 2 * D_MODEL]))
    inputs = [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", N_MELS, "frames"])]
    graph = helper.make_graph(nodes, "whisper_base_encoder", inputs, outputs,
                              initializer=consts + _weight_slots(depth, int8))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ser")
    model.ir_version = 9  # ORT 1.17+ reads it; the helpers' newer default is refused by some
    return model.SerializeToString()


def _weight_slots(depth: int, int8: bool) -> list:
    """The graph's weight initializers, all 'external' (see :func:`_weight_slot`)."""
    from onnx import TensorProto

    slots = []
    for name, _, shape, transposed in weight_layout(depth):
        shape = shape[::-1] if transposed else shape
        if int8 and _is_linear(name):
            slots += [_weight_slot(name + "_q", shape, TensorProto.INT8, 1),
                      _weight_slot(name + "_s", shape[-1:])]
        else:
            slots.append(_weight_slot(name, shape))
    return slots


def _weight_slot(name: str, shape, data_type=None, itemsize: int = 4) -> "onnx.TensorProto":
    """An initializer (float32 unless ``data_type`` says) whose data is 'external': ORT takes
    it from the OrtValue given with ``SessionOptions.add_external_initializers`` and never
    opens the named location."""
    from onnx import TensorProto

    slot = TensorProto(name=name, data_type=TensorProto.FLOAT if data_type is None else data_type,
                       dims=list(shape), data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "whisper-base-model.bin"), ("offset", "0"),
                       ("length", str(itemsize * int(np.prod(shape))))):
        entry = slot.external_data.add()
        entry.key, entry.value = key, value
    return slot


class OnnxWhisperSession:
    """An ONNX Runtime session of a weight-less encoder graph, given the weights from the
    verified ``model.bin``. ``run(mels)`` -> {state: (batch, 1024)}."""

    def __init__(self, graph: bytes, states: tuple[int, ...], model_bin: str | Path,
                 threads: int = 1, int8: bool = False):
        import onnxruntime as ort

        self.states = tuple(states)
        depth = graph_depth(self.states)
        needed = {source for _, source, _, _ in weight_layout(depth)}  # no unused layer is read
        weights = encoder_weights(read_ct2_variables(model_bin, names=needed), depth)
        if int8:
            weights = quantised_weights(weights)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # OrtValues must outlive the session: ORT uses their memory in place.
        self._values = {k: ort.OrtValue.ortvalue_from_numpy(v) for k, v in weights.items()}
        opts.add_external_initializers(list(self._values), list(self._values.values()))
        self._session = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
        self._outputs = [f"state{s}" for s in self.states]

    def run(self, mels: np.ndarray) -> dict[int, np.ndarray]:
        out = self._session.run(self._outputs, {"mel": np.ascontiguousarray(mels, np.float32)})
        return dict(zip(self.states, out))
