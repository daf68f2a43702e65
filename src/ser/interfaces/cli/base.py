"""What every command shares: the one-line error, and the check that a command's extra is
installed before it does any work."""

from __future__ import annotations

import argparse
from importlib.util import find_spec
from typing import Callable, Iterable

from ser.common import SerError


class CliError(SerError):
    """An expected failure reported as one line."""


#: The modules each optional extra of pyproject.toml brings (those the commands import).
EXTRAS = {
    "train": ("torch", "sklearn", "safetensors", "onnx", "matplotlib"),
    "app": ("streamlit", "plotly"),
    "api": ("fastapi", "uvicorn", "fastapi_offline", "multipart"),
    "ray": ("ray", "pyarrow"),
}

#: A command's needs, from its parsed arguments: (extra, modules of it) pairs.
Needs = Callable[[argparse.Namespace], Iterable[tuple[str, tuple[str, ...]]]]


def _installed(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def check_needs(command: str, args: argparse.Namespace, needs: Needs | None) -> None:
    """Raise one line naming the extra to install when a module ``command`` needs is missing."""
    for extra, modules in (needs(args) if needs else ()):
        missing = [m for m in modules if not _installed(m)]
        if missing:
            raise CliError(f"ser {command} needs the {extra} extra: pip install 'ser[{extra}]' "
                           f"(missing: {', '.join(missing)})")


def needs(*extras: str, **modules: tuple[str, ...]) -> Needs:
    """A fixed need: whole extras by name, or some modules of an extra (``train=("optuna",)``)."""
    fixed = [(e, EXTRAS[e]) for e in extras] + list(modules.items())
    return lambda args: fixed


def encoder_needs(args: argparse.Namespace) -> list[tuple[str, tuple[str, ...]]]:
    """What computing Whisper states for corpus clips needs: the ONNX graph builder for chosen
    states, CTranslate2 for the final layer (both in the train extra)."""
    if getattr(args, "frontend", None) != "whisper-base":
        return []
    return [("train", ("onnx",) if args.encoder_states else ("ctranslate2",))]
