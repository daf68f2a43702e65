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

import numpy as np

from .common import ConfigError

N_LAYERS, D_MODEL, N_HEADS, N_MELS = 6, 512, 8, 80
FINAL = N_LAYERS  # the state after the last layer's final layer norm
#: The ONNX opset of the graph (ReduceMean takes its axes as an input from 18).
OPSET = 18


def read_ct2_variables(path: str | Path, prefix: str = "encoder/") -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 ``model.bin`` (format version 6) whose names start with
    ``prefix``, as float16/float32/int arrays. Only those are read; the rest is skipped."""
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
            if not name.startswith(prefix) or dtype is None:
                f.seek(nbytes, 1)
                continue
            out[name[len(prefix):]] = np.frombuffer(f.read(nbytes), dtype=dtype).reshape(shape)
    return out


def encoder_weights(variables: dict[str, np.ndarray], depth: int) -> dict[str, np.ndarray]:
    """The float32 initializers of a graph of ``depth`` layers, named as :func:`build_graph`
    expects (linear weights transposed so that the graph computes ``x @ W + b``)."""
    def f32(name):
        return np.ascontiguousarray(variables[name], dtype=np.float32)

    w = {"conv1_w": f32("conv1/weight"), "conv1_b": f32("conv1/bias"),
         "conv2_w": f32("conv2/weight"), "conv2_b": f32("conv2/bias"),
         "positions": f32("position_encodings/encodings")}
    for i in range(min(depth, N_LAYERS)):
        src = f"layer_{i}/"
        for part, name in (("self_attention/layer_norm", "ln1"), ("ffn/layer_norm", "ln2")):
            w[f"l{i}_{name}_g"], w[f"l{i}_{name}_b"] = f32(src + part + "/gamma"), f32(src + part + "/beta")
        for part, name in (("self_attention/linear_0", "qkv"), ("self_attention/linear_1", "out"),
                           ("ffn/linear_0", "fc1"), ("ffn/linear_1", "fc2")):
            w[f"l{i}_{name}_w"] = np.ascontiguousarray(f32(src + part + "/weight").T)
            w[f"l{i}_{name}_b"] = f32(src + part + "/bias")
    if depth > N_LAYERS:
        w["ln_post_g"], w["ln_post_b"] = f32("layer_norm/gamma"), f32("layer_norm/beta")
    return w


def graph_depth(states: tuple[int, ...]) -> int:
    """Layers to run for the wanted states (7 = all six plus the final layer norm)."""
    if not states or any(not 0 <= s <= FINAL for s in states) or len(set(states)) != len(states):
        raise ConfigError(f"encoder states must be distinct numbers in 0..{FINAL}, not {states}")
    deepest = max(states)
    return N_LAYERS + 1 if deepest == FINAL else deepest


def build_graph(states: tuple[int, ...]) -> bytes:
    """The weight-less ONNX graph: input ``mel`` (batch, 80, frames), outputs ``state{i}``
    (batch, 1024) = mean and std over time of state ``i`` for each wanted state. Needs ``onnx``
    (training extra); bundles carry the result."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:
        from .encoders import EncoderUnavailableError

        raise EncoderUnavailableError(
            "building the encoder graph needs the onnx package (training extra): "
            "pip install 'ser[train]'; a trained bundle carries its graph") from None

    depth = graph_depth(states)
    weights = encoder_weights(_shapes_only(), depth)
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
        return op("Add", [op("MatMul", [x, f"{name}_w"]), f"{name}_b"])

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
                              initializer=consts + [_weight_slot(n, a.shape) for n, a in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="ser")
    model.ir_version = 9  # ORT 1.17+ reads it; the helpers' newer default is refused by some
    return model.SerializeToString()


def _weight_slot(name: str, shape) -> "onnx.TensorProto":
    """A float32 initializer whose data is 'external': ORT takes it from the OrtValue given
    with ``SessionOptions.add_external_initializers`` and never opens the named location."""
    from onnx import TensorProto

    slot = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape),
                       data_location=TensorProto.EXTERNAL)
    for key, value in (("location", "whisper-base-model.bin"), ("offset", "0"),
                       ("length", str(4 * int(np.prod(shape))))):
        entry = slot.external_data.add()
        entry.key, entry.value = key, value
    return slot


def _shapes_only() -> dict[str, np.ndarray]:
    """Stand-in variables with the real shapes (zero-strided, no memory) to name the inputs."""
    def z(*shape):
        return np.broadcast_to(np.float16(0), shape)

    v = {"conv1/weight": z(D_MODEL, N_MELS, 3), "conv1/bias": z(D_MODEL),
         "conv2/weight": z(D_MODEL, D_MODEL, 3), "conv2/bias": z(D_MODEL),
         "position_encodings/encodings": z(1500, D_MODEL),
         "layer_norm/gamma": z(D_MODEL), "layer_norm/beta": z(D_MODEL)}
    for i in range(N_LAYERS):
        for part in ("self_attention/layer_norm", "ffn/layer_norm"):
            v[f"layer_{i}/{part}/gamma"] = v[f"layer_{i}/{part}/beta"] = z(D_MODEL)
        for part, (o, n) in (("self_attention/linear_0", (3 * D_MODEL, D_MODEL)),
                             ("self_attention/linear_1", (D_MODEL, D_MODEL)),
                             ("ffn/linear_0", (4 * D_MODEL, D_MODEL)),
                             ("ffn/linear_1", (D_MODEL, 4 * D_MODEL))):
            v[f"layer_{i}/{part}/weight"], v[f"layer_{i}/{part}/bias"] = z(o, n), z(o)
    return v


class OnnxWhisperSession:
    """An ONNX Runtime session of a weight-less encoder graph, given the weights from the
    verified ``model.bin``. ``run(mels)`` -> {state: (batch, 1024)}."""

    def __init__(self, graph: bytes, states: tuple[int, ...], model_bin: str | Path,
                 threads: int = 1):
        import onnxruntime as ort

        self.states = tuple(states)
        weights = encoder_weights(read_ct2_variables(model_bin), graph_depth(self.states))
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
