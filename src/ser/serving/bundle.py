"""Model bundles: one folder with everything needed to use a model, and nothing executable.

    model.onnx              the graph for inference (ONNX Runtime; no torch needed)
    weights.safetensors     the PyTorch weights (for fine-tuning or re-export)
    config.json             format version, labels, feature config, scaler statistics,
                            architecture, temperature, training data summary, metrics,
                            and the sha256 of the graph and the weights (the card is
                            documentation, not hashed)
    MODEL_CARD.md           data, protocols, results, limits, licence

Written by :mod:`ser.training.export`. Loading checks the format version, the feature version and every hash, and fails with a
clear :class:`BundleError` on any mismatch. No pickles anywhere.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from ser.common import EMOTIONS, SerError, sha256_file
from ser.frontends.features import FEATURE_VERSION, FeatureConfig

BUNDLE_FORMAT = 1
HASHED_FILES = ("model.onnx", "weights.safetensors")


class BundleError(SerError, ValueError):
    """The bundle is missing, damaged, or made for an incompatible version."""


#: Models shipped inside the package, by the short name every interface accepts.
SHIPPED_MODELS = {
    "default": "Whisper-base encoder states + logistic head (needs the whisper extra)",
    "reference": "the reference system: hand-made features + stacked LSTM 256-256-128",
    "light": "hand-made features + CNN/BiLSTM/attention; no encoder package needed",
}


def shipped_bundle_path(name: str) -> Path:
    if name not in SHIPPED_MODELS:
        raise BundleError(f"no shipped model named {name!r}; choose from "
                          f"{', '.join(SHIPPED_MODELS)} or give a bundle folder")
    return Path(str(files("ser") / "models" / name))


def default_bundle_path() -> Path:
    """The model shipped inside the package (Whisper-base encoder + classifier)."""
    return shipped_bundle_path("default")


def light_bundle_path() -> Path:
    """The shipped model that needs no encoder package (hand-made features)."""
    return shipped_bundle_path("light")


def resolve_model(model: str | Path | None) -> Path:
    """A shipped model's name (``default``, ``reference``, ``light``) or a bundle folder.

    A name wins over a folder of the same name in the working directory, unless the argument
    is clearly a path: it contains a separator (``./light``) or names a bundle (a folder with a
    ``config.json``)."""
    if model is None:
        return default_bundle_path()
    text = str(model)
    path = Path(model)
    clearly_a_path = ("/" in text or os.sep in text or (os.altsep or "/") in text
                      or (path / "config.json").is_file())
    if text in SHIPPED_MODELS and not clearly_a_path:
        return shipped_bundle_path(text)
    if path.is_dir():
        return path
    raise BundleError(f"{model}: neither a bundle folder nor a shipped model "
                      f"({', '.join(SHIPPED_MODELS)}; `ser models` lists them)")


@dataclass(frozen=True)
class BundleInfo:
    root: Path
    config: dict

    @property
    def labels(self) -> list[str]:
        return list(self.config["labels"])

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.config["feature_config"])

    @property
    def temperature(self) -> float:
        return float(self.config.get("temperature", 1.0))

    @property
    def frontend(self) -> str:
        return self.config.get("frontend", "handcrafted")

    @property
    def input_shape(self) -> list[int]:
        return list(self.config["input"]["shape"][1:])

    @property
    def name(self) -> str:
        """The shipped model's name, else the bundle folder's name."""
        for name in SHIPPED_MODELS:
            if self.root.resolve() == shipped_bundle_path(name).resolve():
                return name
        return self.root.name

    @property
    def version(self) -> str:
        """The exact model: the first 12 hex digits of the sha256 of its config.json, which
        holds the hashes of its graph and weights (two bundles with one version answer alike)."""
        return sha256_file(self.root / "config.json")[:12]

    @property
    def onnx_path(self) -> Path:
        return self.root / "model.onnx"


def read_bundle(root: str | Path | None = None, verify: bool = True) -> BundleInfo:
    """Read and check a bundle's config.json (and file hashes when ``verify``)."""
    root = Path(root) if root is not None else default_bundle_path()
    cfg_path = root / "config.json"
    if not root.is_dir():
        raise BundleError(f"{root}: model bundle folder not found")
    if not cfg_path.is_file():
        raise BundleError(f"{root}: not a model bundle (no config.json)")
    try:
        config = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{cfg_path}: unreadable ({exc})") from None
    if config.get("bundle_format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{root}: bundle format {config.get('bundle_format')!r}, this ser reads "
            f"format {BUNDLE_FORMAT}; use a matching ser version"
        )
    if config.get("feature_config", {}).get("version") != FEATURE_VERSION:
        raise BundleError(
            f"{root}: made with feature version {config.get('feature_config', {}).get('version')!r}, "
            f"this ser computes version {FEATURE_VERSION}"
        )
    # Imported here: both import this module, so a top-level import would be a cycle.
    from ser.frontends.encoders import ENCODER_VERSION
    from ser.frontends.registry import FRONTENDS

    frontend = config.get("frontend", "handcrafted")
    if frontend not in FRONTENDS:
        raise BundleError(f"{root}: front end {frontend!r} is unknown to this ser")
    if frontend == "whisper-base":
        encoder_version = config.get("encoder", {}).get("version", 1)
        if encoder_version != ENCODER_VERSION:
            raise BundleError(f"{root}: made with encoder version {encoder_version}, this ser "
                              f"computes version {ENCODER_VERSION}")
    if list(config.get("labels", [])) != list(EMOTIONS):
        raise BundleError(f"{root}: labels {config.get('labels')} differ from {list(EMOTIONS)}")
    if verify:
        for name, digest in config.get("sha256", {}).items():
            path = root / name
            if not path.is_file():
                raise BundleError(f"{root}: {name} is missing")
            if sha256_file(path) != digest:
                raise BundleError(f"{root}: {name} does not match its sha256 in config.json (damaged or altered)")
        if "model.onnx" not in config.get("sha256", {}):
            raise BundleError(f"{root}: config.json lists no hash for model.onnx")
    return BundleInfo(root, config)
