"""Command-line entry point: parse arguments, build a frozen config, call the library.

The command line is the top layer of the package: each module of :mod:`anisoada.cli` owns one
group of subcommands and exposes ``register(subparsers)``; this file only assembles them, so
adding a command never means editing another command's code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from anisoada import __version__

# Modules that contribute subcommands, in the order they appear in ``--help``.
_COMMAND_MODULES: tuple[str, ...] = (
    "anisoada.cli.bound",
    "anisoada.cli.demo",
    "anisoada.cli.data",
    "anisoada.cli.measure",
    "anisoada.cli.sweep",
    "anisoada.cli.lm",
    "anisoada.cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``anisoada`` argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="anisoada",
        description=(
            "AdaGrad under anisotropic smoothness: optimizers, measurement of per-coordinate "
            "smoothness and noise, the paper's bounds, and end-to-end reproductions."
        ),
    )
    parser.add_argument("--version", action="version", version=f"anisoada {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        status = args.func(args)
    except (ValueError, FileNotFoundError) as error:
        # Bad input: one clear line, no traceback, and a non-zero exit status.
        print(f"anisoada {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0 if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
