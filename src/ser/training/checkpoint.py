"""Training state after each epoch, so that a long run can be stopped and resumed (``--resume``).

Tensors (weights, optimiser moments, the best epoch's weights, PyTorch's random state) go to
``state.safetensors``; everything else (epoch, history, early-stopping counters, NumPy's random
state, the optimiser's hyperparameters, the training config) to ``state.json``. No pickles: a
checkpoint cannot run code when it is loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ser.common import ConfigError

TENSORS = "state.safetensors"
META = "state.json"


@dataclass
class Checkpoint:
    epoch: int = 0
    history: dict = field(default_factory=lambda: {
        "loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []})
    best_loss: float = float("inf")
    best_epoch: int = 0
    stale: int = 0
    seconds: float = 0.0
    best_state: dict | None = None  # CPU copies of the best epoch's weights

    @classmethod
    def fresh(cls) -> "Checkpoint":
        return cls()

    def record(self, epoch: int, model, **metrics: float) -> None:
        """Append an epoch's metrics; keep the weights if validation loss improved."""
        self.epoch = epoch
        for key, value in metrics.items():
            self.history[key].append(value)
        if metrics["val_loss"] < self.best_loss - 1e-4:
            self.best_loss, self.best_epoch, self.stale = metrics["val_loss"], epoch, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.stale += 1

    @staticmethod
    def exists(folder: Path) -> bool:
        return (Path(folder) / META).is_file() and (Path(folder) / TENSORS).is_file()

    def save(self, folder: Path, model, optimiser, rng: np.random.Generator, config: dict) -> None:
        import torch
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        for k, v in (self.best_state or {}).items():
            tensors[f"best.{k}"] = v.contiguous()
        opt = optimiser.state_dict()
        for pid, slots in opt["state"].items():
            for name, value in slots.items():
                tensors[f"opt.{pid}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        meta = {
            "epoch": self.epoch, "history": self.history, "best_loss": self.best_loss,
            "best_epoch": self.best_epoch, "stale": self.stale, "seconds": self.seconds,
            "numpy_rng": rng.bit_generator.state, "param_groups": opt["param_groups"],
            "config": config,
        }
        # Write both files beside the old ones, then swap: a kill mid-write leaves the last
        # complete checkpoint in place.
        save_file(tensors, str(folder / (TENSORS + ".tmp")))
        (folder / (META + ".tmp")).write_text(json.dumps(meta))
        os.replace(folder / (TENSORS + ".tmp"), folder / TENSORS)
        os.replace(folder / (META + ".tmp"), folder / META)

    @classmethod
    def load(cls, folder: Path, model, optimiser, rng: np.random.Generator,
             config: dict) -> "Checkpoint":
        """Restore model, optimiser and random state in place; refuse a different config."""
        import torch
        from safetensors.torch import load_file

        folder = Path(folder)
        meta = json.loads((folder / META).read_text())
        saved = {k: v for k, v in meta["config"].items() if k not in ("max_epochs", "threads", "device")}
        wanted = {k: v for k, v in config.items() if k not in ("max_epochs", "threads", "device")}
        if saved != wanted:
            differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
            raise ConfigError(f"{folder} holds a run with other settings ({', '.join(differ)}); "
                             "resume with the same settings or use a new --out folder")
        tensors = load_file(str(folder / TENSORS))
        device = next(model.parameters()).device
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt_state: dict = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = value if name == "step" else value.to(device)
        optimiser.load_state_dict({"state": opt_state, "param_groups": meta["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        rng.bit_generator.state = meta["numpy_rng"]
        best = {k[5:]: v for k, v in tensors.items() if k.startswith("best.")}
        return cls(epoch=meta["epoch"], history=meta["history"], best_loss=meta["best_loss"],
                   best_epoch=meta["best_epoch"], stale=meta["stale"], seconds=meta["seconds"],
                   best_state=best or None)
