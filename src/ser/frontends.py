"""Front ends: what turns a clip's placed 3-s window into model inputs, by name.

* ``handcrafted`` — 151 frames x 233 hand-made features (:mod:`ser.features`).
* ``whisper-base`` — the Whisper-base encoder's states pooled to 1,024 numbers
  (:mod:`ser.encoders`).

Each knows its bundle config, its input shape and how to extract (cached) inputs for corpus
records; training, tuning, ``ser datasets extract`` and the bundle all go through this one
registry instead of testing the name in several places.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .common import ConfigError
from .encoders import EncoderConfig, extract_embeddings
from .extraction import extract


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
        from .features import features_from_waveform

        shape = (0, feature_config.n_frames, feature_config.n_features)
        return (np.stack([features_from_waveform(w, feature_config) for w in windows])
                if len(windows) else np.zeros(shape, np.float32))

    def bundle_config(self) -> dict | None:
        return None  # everything is in the feature config

    def input_shape(self, feature_config) -> list[int]:
        return [feature_config.n_frames, feature_config.n_features]

    def extract(self, records: Sequence, feature_config, *, cache_dir=None, workers=None,
                progress=True, variant=None, desc="features"):
        return extract(records, feature_config, cache_dir=cache_dir, workers=workers,
                       progress=progress, variant=variant, desc=desc)


@dataclass(frozen=True)
class WhisperFrontend:
    name: str = "whisper-base"
    architectures: tuple[str, ...] = ("embedding_mlp",)
    compute_type: str = "int8"  # CTranslate2 quantises the float16 weights at load; or float32
    # One encoder per process: run where the model is loaded, on the placed windows.
    in_workers: bool = False

    def load(self, threads: int = 1):
        """The encoder, ready to embed windows (a few seconds; the weights come from packages)."""
        from .encoders import WhisperEncoder

        return WhisperEncoder(self.encoder_config(), threads=threads)

    def window_inputs(self, windows, feature_config, runtime=None):
        return runtime.embed(windows)

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(compute_type=self.compute_type)

    def bundle_config(self) -> dict | None:
        return self.encoder_config().to_dict()

    def input_shape(self, feature_config) -> list[int]:
        return [self.encoder_config().dim]

    def extract(self, records: Sequence, feature_config, *, cache_dir=None, workers=None,
                progress=True, variant=None, desc="embeddings"):
        return extract_embeddings(records, feature_config, self.encoder_config(),
                                  cache_dir=cache_dir, variant=variant, progress=progress)


FRONTENDS = {"handcrafted": HandcraftedFrontend(), "whisper-base": WhisperFrontend()}


def frontend_of(bundle) -> "HandcraftedFrontend | WhisperFrontend":
    """A bundle's front end, with the options it was trained with."""
    encoder = bundle.config.get("encoder") or {}
    return get_frontend(bundle.frontend, {k: v for k, v in encoder.items() if k == "compute_type"})


def get_frontend(name: str, options: dict | None = None):
    """The named front end, with ``options`` (e.g. ``{"compute_type": "float32"}`` for the
    encoder) applied; unknown names or options are a ConfigError."""
    try:
        frontend = FRONTENDS[name]
    except KeyError:
        raise ConfigError(f"unknown front end {name!r}; choose from {', '.join(FRONTENDS)}") from None
    if not options:
        return frontend
    allowed = {"compute_type"} if name == "whisper-base" else set()
    if set(options) - allowed:
        raise ConfigError(f"the {name} front end takes no option {sorted(set(options) - allowed)}")
    if options.get("compute_type", "int8") not in ("int8", "float32"):
        raise ConfigError(f"compute_type must be int8 or float32, not {options['compute_type']!r}")
    return replace(frontend, **options)


def extract_inputs(records, feature_config, frontend: str, cache_dir=None, workers=None,
                   progress=True, variant=None, desc="features", options: dict | None = None):
    """Model inputs of records for the named front end (see :func:`get_frontend`)."""
    return get_frontend(frontend, options).extract(
        records, feature_config, cache_dir=cache_dir, workers=workers, progress=progress,
        variant=variant, desc=desc)
