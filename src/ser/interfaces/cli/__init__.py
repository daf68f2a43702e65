"""The ``ser`` command line. Thin: it parses arguments, calls the library and formats results.

Every expected failure (bad audio, missing paths, bad options) prints one line starting with
``ser: error:`` and exits non-zero; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import sys

from ser.common import __version__
from ser.common import SerError
from ser.interfaces.cli.base import CliError, check_needs

__all__ = ["CliError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from ser.interfaces.cli import data, listen, predict, serving, training

    parser = argparse.ArgumentParser(
        prog="ser", description="Speech emotion recognition: eight emotions from speech."
    )
    parser.add_argument("--version", action="version", version=f"ser {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                help="run `ser COMMAND --help` for its options")
    for module in (predict, listen, serving, training, data):
        module.add_parsers(sub)
    for command in all_parsers(parser):
        command.formatter_class = DefaultsHelpFormatter
    return parser


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default where it has one (not None, not a bare flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or action.default in (None, False, argparse.SUPPRESS)
                or not action.option_strings or isinstance(action.default, bool)):
            return text
        return f"{text} (default: %(default)s)"


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parser and every sub-command's parser, depth first."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found += all_parsers(child)
    return found


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"ser: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    import warnings

    from threadpoolctl import threadpool_limits

    warnings.formatwarning = _one_line_warning  # "ser: warning: …", not a source line
    # NumPy's BLAS on one thread: the encoder's own workers are the parallelism, and OpenBLAS's
    # idle threads spin — they doubled the CPU time of a window (0.17 -> 0.08 s) for no speed.
    threadpool_limits(1, user_api="blas")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        check_needs(args.command, args, getattr(args, "needs", None))  # before any work
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
