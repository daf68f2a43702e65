from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def tone(duration_s: float = 1.0, sr: int = 16_000, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    """A harmonic 'voiced' test signal with a slow amplitude envelope."""
    t = np.arange(int(duration_s * sr)) / sr
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * np.minimum(t / max(duration_s, 1e-9), 1)))
    return (amp * y * envelope / np.abs(y).max()).astype(np.float32)


def encode_with_pyav(target, y: np.ndarray, sr: int, container: str, codec: str) -> None:
    """Write mono float audio with FFmpeg (PyAV) to a path or binary file object: the formats
    soundfile cannot write (M4A/AAC, MP4, WebM). The library's encoder (ser.training.augment)."""
    from ser.training.augment import encode_with_pyav as encode

    encode(target, y, sr, container, codec)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speech(speed: float = 1.0, gain: float = 1.0, sr: int = 16_000) -> np.ndarray:
    """Real (synthetic espeak) speech: the bundled example played ``speed`` times faster, which
    also raises its pitch; the voice activity detector takes it for speech, unlike a tone."""
    from importlib.resources import files

    import soundfile as sf
    import soxr

    y, rate = sf.read(str(files("ser") / "examples" / "speech_example.wav"), dtype="float32")
    y = soxr.resample(y, rate, int(round(rate / speed)))  # played back at `rate`
    if sr != rate:
        y = soxr.resample(y, rate, sr)
    return (gain * y).astype(np.float32)


@pytest.fixture
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.skip("../shared/corpora is not available")
    return CORPORA


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """RAVDESS-named clips: 4 actors x 8 emotions x 2 of the bundled example speech, whose
    speed (and so pitch) and loudness depend on the emotion: a learnable task."""
    import soundfile as sf

    root = tmp_path_factory.mktemp("tiny_corpus")
    rng = np.random.default_rng(0)
    for actor in range(1, 5):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir()
        for emotion in range(1, 9):
            for rep in (1, 2):
                y = speech(0.7 + 0.1 * emotion + 0.02 * actor, gain=0.5 + 0.06 * emotion)
                y = y + 0.002 * rng.standard_normal(len(y)).astype(np.float32)
                name = f"03-01-{emotion:02d}-01-01-{rep:02d}-{actor:02d}.wav"
                sf.write(folder / name, y, 16_000)
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tiny_corpus, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny model trained with `ser train` on the tiny corpus: (run folder, bundle folder)."""
    from ser.interfaces.cli import main

    out = tmp_path_factory.mktemp("tiny_run")
    params = out / "params.json"
    params.write_text('{"arch": {"conv_channels": 8, "lstm_units": 8, "dense_units": 16}}')
    code = main(["train", str(tiny_corpus), "--out", str(out), "--epochs", "2", "--quiet",
                 "--params", str(params), "--cache-dir", str(out / "cache"), "--test-fraction", "0.25"])
    assert code == 0
    return out, out / "bundle"


def make_bundle(root: Path, anchor: str = "speech", seed: int = 0) -> Path:
    """A real bundle with random weights, through the real save_bundle (audonnx's
    ``create_model`` idea): for the contract tests of the API, the app and inference, which
    need a working bundle, not a trained one."""
    import torch

    from ser import EMOTIONS
    from ser.training.architectures import full_arch
    from ser.training.export import save_bundle
    from ser.frontends.features import FeatureConfig
    from ser.training.networks import build_model

    torch.manual_seed(seed)
    config = FeatureConfig(anchor=anchor)
    arch = full_arch({"name": "conv_attention", "conv_channels": 8, "lstm_units": 8, "dense_units": 16})
    net = build_model(arch, config.n_features, len(EMOTIONS)).eval()
    speakers = [f"ravdess:{i:02d}" for i in range(1, 5)]
    split = {"train": {"files": 32, "speakers": speakers[:2]},
             "val": {"files": 16, "speakers": speakers[2:3]},
             "test": {"files": 16, "speakers": speakers[3:]}}
    data = {"files": 64, "skipped": {}, "unusable_clips": [],
            "corpora": {"ravdess": {"files": 64, "speakers": 4, "classes": {e: 8 for e in EMOTIONS}}}}
    info = save_bundle(net, root, feature_config=config,
                       scaler={"mean": [0.0] * config.n_features, "std": [100.0] * config.n_features},
                       arch=arch, temperature=1.0, metrics={"protocol": "speaker", "seed": seed},
                       data=data, training={"split": split, "parameters": sum(p.numel() for p in net.parameters())},
                       card="# Model card: random weights, for tests\n", frontend="handcrafted")
    return info.root


@pytest.fixture(scope="session")
def random_bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("random_bundle") / "bundle")
