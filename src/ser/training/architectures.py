"""The architectures by name and their default parameters: plain data, no torch, so that the
command line can list them without importing PyTorch (see :mod:`ser.training.networks` for the networks)."""

from __future__ import annotations

ARCHITECTURES = ("reference_lstm", "conv_attention", "embedding_mlp")

DEFAULTS: dict[str, dict] = {
    "reference_lstm": {
        "units": [256, 256, 128],
        "lstm_dropout": 0.4,
        "dense_units": 256,
        "dense_dropout": 0.5,
    },
    "conv_attention": {
        "conv_channels": 128,
        "lstm_units": 128,
        "lstm_dropout": 0.3,
        "dense_units": 256,
        "dense_dropout": 0.5,
    },
    "embedding_mlp": {
        "input_dropout": 0.2,
        "dense_units": 256,
        "dense_dropout": 0.5,
    },
}


def full_arch(arch: dict) -> dict:
    """The architecture config with every default filled in (what a bundle records)."""
    name = arch["name"]
    return {"name": name, **DEFAULTS[name], **{k: v for k, v in arch.items() if k != "name"}}
