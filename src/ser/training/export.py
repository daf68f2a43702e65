"""A trained PyTorch model to a bundle folder (ONNX graph, safetensors weights, config.json,
model card) that :mod:`ser.serving.bundle` reads, and back to PyTorch for fine-tuning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from ser.common import EMOTIONS, __version__, sha256_file
from ser.frontends.features import FeatureConfig
from ser.serving.bundle import BUNDLE_FORMAT, HASHED_FILES, BundleInfo, read_bundle


def save_bundle(
    model,
    root: str | Path,
    *,
    feature_config: FeatureConfig,
    scaler: dict,
    arch: dict,
    temperature: float,
    metrics: dict,
    data: dict,
    training: dict,
    card: str,
    frontend: str = "handcrafted",
    encoder: dict | None = None,
    input_shape: list[int] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> BundleInfo:
    """Export ``model`` (a torch module in eval mode) and its metadata to a bundle folder;
    ``extra_files`` (e.g. the front end's ``encoder.onnx``) are written and hashed too."""
    import torch
    from safetensors.torch import save_file

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    model.eval()
    input_shape = input_shape or [feature_config.n_frames, feature_config.n_features]
    dummy = torch.zeros(2, *input_shape)
    with warnings.catch_warnings():
        # The TorchScript exporter warns about LSTMs and batch sizes; our LSTMs start from zero
        # states, and tests check ONNX and PyTorch agree on other batch sizes.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (dummy,), str(root / "model.onnx"),
            input_names=["features"], output_names=["logits"],
            dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(root / "weights.safetensors"))
    extra_files = extra_files or {}
    for name, content in extra_files.items():
        (root / name).write_bytes(content)
    config = {
        "bundle_format": BUNDLE_FORMAT,
        "ser_version": __version__,
        "labels": list(EMOTIONS),
        "feature_config": feature_config.to_dict(),
        "feature_config_hash": feature_config.hash(),
        "scaler": scaler,
        "arch": arch,
        "temperature": temperature,
        "frontend": frontend,
        **({"encoder": encoder} if encoder else {}),
        "input": {"name": "features", "shape": ["batch", *input_shape]},
        "data": data,
        "training": training,
        "metrics": metrics,
        "sha256": {name: sha256_file(root / name) for name in (*HASHED_FILES, *extra_files)},
    }
    (root / "config.json").write_text(json.dumps(config, indent=1))
    (root / "MODEL_CARD.md").write_text(card)
    return read_bundle(root)


def load_torch_model(info: BundleInfo):
    """The PyTorch model of a bundle (needs the ``train`` extra)."""
    from safetensors.torch import load_file

    from ser.training.networks import build_model

    model = build_model(info.config["arch"], info.input_shape[-1], len(info.labels))
    model.load_state_dict(load_file(str(info.root / "weights.safetensors")))
    return model.eval()
