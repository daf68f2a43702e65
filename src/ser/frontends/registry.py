"""Front ends: what turns a clip's placed 3-s window into model inputs, by name.

* ``handcrafted`` — 151 frames x 233 hand-made features (:mod:`ser.frontends.features`).
* ``whisper-base`` — the Whisper-base encoder's states pooled to 1,024 numbers per state
  (:mod:`ser.frontends.encoders`): the final layer on CTranslate2, or chosen layers on ONNX Runtime.

Each knows its bundle config, its input shape and how placed windows become model inputs;
training, tuning, ``ser datasets extract``, the bundle and the recognizer all go through this
one registry instead of testing the name in several places (cached corpus extraction by front
end is :func:`ser.training.extraction.extract_inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ser.common import ConfigError
from ser.frontends.encoders import EncoderConfig


@dataclass(frozen=True)
class HandcraftedFrontend:
    name: str = "handcrafted"
    architectures: tuple[str, ...] = ("reference_lstm", "conv_attention")
    # The features are computed where the audio is decoded (prediction's worker processes).
    in_workers: bool = True

    def load(self, threads: int = 1):
        """Nothing to load: the features are a function of the placed window."""
        return None

    def window_inputs(self, windows, feature_config, runtime=None):
        from ser.frontends.features import features_from_waveform

        shape = (0, feature_config.n_frames, feature_config.n_features)
        return (np.stack([features_from_waveform(w, feature_config) for w in windows])
                if len(windows) else np.zeros(shape, np.float32))

    def bundle_config(self) -> dict | None:
        return None  # everything is in the feature config

    def bundle_files(self) -> dict[str, bytes]:
        return {}

    def input_shape(self, feature_config) -> list[int]:
        return [feature_config.n_frames, feature_config.n_features]



@dataclass(frozen=True)
class WhisperFrontend:
    name: str = "whisper-base"
    architectures: tuple[str, ...] = ("embedding_mlp",)
    compute_type: str = "int8"  # CTranslate2 quantises the float16 weights at load; or float32
    runtime: str = "ctranslate2"  # or "onnx": float32, any layer's states
    states: tuple[int, ...] = (6,)
    graph: str | None = None  # a bundle's weight-less encoder graph (onnx runtime)
    # One encoder per process: run where the model is loaded, on the placed windows.
    in_workers: bool = False

    def load(self, threads: int = 1):
        """The encoder, ready to embed windows (a fraction of a second to a few seconds; the
        weights come from packages)."""
        from ser.frontends.encoders import load_encoder

        graph = Path(self.graph).read_bytes() if self.graph else None
        return load_encoder(self.encoder_config(), threads=threads, graph=graph)

    def window_inputs(self, windows, feature_config, runtime=None):
        return runtime.embed(windows, whole=feature_config.anchor == "whole")

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(compute_type=self.compute_type, runtime=self.runtime,
                             states=self.states)

    def bundle_config(self) -> dict | None:
        return self.encoder_config().to_dict()

    def bundle_files(self) -> dict[str, bytes]:
        """Files the bundle carries for this front end: the weight-less encoder graph."""
        if self.runtime != "onnx":
            return {}
        from ser.frontends.whisper_onnx import build_graph

        return {"encoder.onnx": build_graph(self.states, int8=self.compute_type == "int8")}

    def input_shape(self, feature_config) -> list[int]:
        return [self.encoder_config().dim]



FRONTENDS = {"handcrafted": HandcraftedFrontend(), "whisper-base": WhisperFrontend()}


ENCODER_OPTIONS = ("compute_type", "runtime", "states")


def frontend_of(bundle) -> "HandcraftedFrontend | WhisperFrontend":
    """A bundle's front end, with the options it was trained with."""
    encoder = bundle.config.get("encoder") or {}
    options = {k: v for k, v in encoder.items() if k in ENCODER_OPTIONS}
    frontend = get_frontend(bundle.frontend, options)
    if bundle.frontend == "whisper-base" and (bundle.root / "encoder.onnx").is_file():
        frontend = replace(frontend, graph=str(bundle.root / "encoder.onnx"))
    return frontend


def get_frontend(name: str, options: dict | None = None):
    """The named front end, with ``options`` applied: for the encoder ``compute_type``
    (int8/float32), ``runtime`` (ctranslate2/onnx) and ``states`` (e.g. ``[3]``); giving
    ``states`` alone selects the onnx runtime in float32. Unknown names or options, or a
    combination the encoder cannot compute, are a ConfigError."""
    try:
        frontend = FRONTENDS[name]
    except KeyError:
        raise ConfigError(f"unknown front end {name!r}; choose from {', '.join(FRONTENDS)}") from None
    if not options:
        return frontend
    allowed = set(ENCODER_OPTIONS) if name == "whisper-base" else set()
    if set(options) - allowed:
        raise ConfigError(f"the {name} front end takes no option {sorted(set(options) - allowed)}")
    options = dict(options)
    if "states" in options:
        options["states"] = tuple(options["states"])
        options.setdefault("runtime", "onnx")
        options.setdefault("compute_type", "float32" if options["runtime"] == "onnx" else "int8")
    frontend = replace(frontend, **options)
    frontend.encoder_config()  # validates the combination
    return frontend
