"""Model architectures (PyTorch), chosen by name from a JSON-serialisable config.

* ``reference_lstm`` — the reference design: LSTM 256 → 256 → 128 (dropout 0.4 between),
  dense 256 (dropout 0.5), softmax over the 8 classes; the last time step summarises the clip.
* ``conv_attention`` — from the reference's future scope: a small 1-D CNN front end (halves the
  frame rate, learns local spectro-temporal patterns), a bidirectional LSTM and attention
  pooling over time (speech frames weigh more than pauses). About 9x fewer operations per clip
  than the reference, which matters when training on a 2-core CPU.

* ``embedding_mlp`` — a small MLP on a pooled clip vector from a pretrained encoder
  (:mod:`ser.frontends.encoders`).

Models output logits; softmax (with the calibrated temperature) is applied at inference.
"""

from __future__ import annotations

import torch
from torch import nn

from ser.training.architectures import ARCHITECTURES, DEFAULTS, full_arch  # noqa: F401  (re-exported)
from ser.common import ConfigError


class ReferenceLSTM(nn.Module):
    def __init__(self, n_features, n_classes, units, lstm_dropout, dense_units, dense_dropout):
        super().__init__()
        layers, size = [], n_features
        for u in units:
            layers.append(nn.LSTM(size, u, batch_first=True))
            size = u
        self.lstms = nn.ModuleList(layers)
        self.dropout = nn.Dropout(lstm_dropout)
        self.head = nn.Sequential(
            nn.Linear(size, dense_units), nn.ReLU(), nn.Dropout(dense_dropout),
            nn.Linear(dense_units, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, frames, features)
        for lstm in self.lstms:
            x, _ = lstm(x)
            x = self.dropout(x)
        return self.head(x[:, -1])


class ConvAttention(nn.Module):
    def __init__(
        self, n_features, n_classes, conv_channels, lstm_units, lstm_dropout, dense_units,
        dense_dropout,
    ):
        super().__init__()
        c = conv_channels
        self.front = nn.Sequential(
            nn.Conv1d(n_features, c, kernel_size=5, padding=2), nn.BatchNorm1d(c), nn.ReLU(),
            nn.Conv1d(c, c, kernel_size=5, stride=2, padding=2), nn.BatchNorm1d(c), nn.ReLU(),
            nn.Dropout(lstm_dropout),
        )
        self.lstm = nn.LSTM(c, lstm_units, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(lstm_dropout)
        self.attention = nn.Linear(2 * lstm_units, 1)
        self.head = nn.Sequential(
            nn.Linear(4 * lstm_units, dense_units), nn.ReLU(), nn.Dropout(dense_dropout),
            nn.Linear(dense_units, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.front(x.transpose(1, 2)).transpose(1, 2)
        h, _ = self.lstm(h)
        h = self.dropout(h)
        weights = torch.softmax(self.attention(h), dim=1)  # (batch, frames, 1)
        mean = (weights * h).sum(dim=1)
        # Attentive statistics pooling: weighted mean and standard deviation.
        var = (weights * h * h).sum(dim=1) - mean * mean
        std = torch.sqrt(var.clamp(min=1e-6))
        return self.head(torch.cat([mean, std], dim=1))


class EmbeddingMLP(nn.Module):
    """A small classifier on a pooled clip vector (e.g. Whisper encoder mean+std states)."""

    def __init__(self, n_features, n_classes, input_dropout, dense_units, dense_dropout):
        super().__init__()
        if dense_units:
            self.net = nn.Sequential(
                nn.Dropout(input_dropout), nn.Linear(n_features, dense_units), nn.ReLU(),
                nn.Dropout(dense_dropout), nn.Linear(dense_units, n_classes),
            )
        else:  # dense_units=0: a linear (multinomial logistic) classifier
            self.net = nn.Sequential(nn.Dropout(input_dropout), nn.Linear(n_features, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, features)
        return self.net(x)


def build_model(arch: dict, n_features: int, n_classes: int) -> nn.Module:
    """``arch`` = {"name": ..., **params}; missing params take the architecture's defaults."""
    name = arch.get("name")
    if name not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {name!r}; choose from {', '.join(ARCHITECTURES)}")
    params = {**DEFAULTS[name], **{k: v for k, v in arch.items() if k != "name"}}
    unknown = set(params) - set(DEFAULTS[name])
    if unknown:
        raise ConfigError(f"unknown parameter(s) for {name}: {sorted(unknown)}")
    cls = {"reference_lstm": ReferenceLSTM, "conv_attention": ConvAttention,
           "embedding_mlp": EmbeddingMLP}[name]
    return cls(n_features, n_classes, **params)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
