"""The ``ser`` command line. Thin: it parses arguments, calls the library and formats results.

Every expected failure (bad audio, missing paths, bad options) prints one line starting with
``ser: error:`` and exits non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..common import SerError


class CliError(SerError):
    """An expected failure reported as one line."""


def build_parser() -> argparse.ArgumentParser:
    from . import data, predict, serving, training

    parser = argparse.ArgumentParser(
        prog="ser", description="Speech emotion recognition: eight emotions from speech."
    )
    parser.add_argument("--version", action="version", version=f"ser {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (predict, serving, training, data):
        module.add_parsers(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"ser: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = _one_line_warning  # "ser: warning: …", not a source line
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (SerError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        # Expected failures only: a bug anywhere else keeps its traceback.
        print(f"ser: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ser: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
