"""Command-line entry point: parse arguments, build a frozen config, call the library.

The command line is the top layer of the package: each module of :mod:`anisoada.cli` owns one
group of subcommands and exposes ``register(subparsers)``; this file only assembles them, so
adding a command never means editing another command's code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from anisoada import __version__
from anisoada.cli._common import (
    Parser,
    Terminated,
    fail,
    one_line_warnings,
    terminate_as_interrupt,
)

# Modules that contribute subcommands, in the order they appear in ``--help``.
_COMMAND_MODULES: tuple[str, ...] = (
    "anisoada.cli.bound",
    "anisoada.cli.demo",
    "anisoada.cli.data",
    "anisoada.cli.measure",
    "anisoada.cli.sweep",
    "anisoada.cli.lm",
    "anisoada.cli.advise",
    "anisoada.cli.report",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``anisoada`` argument parser with every registered subcommand."""
    parser = Parser(
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
    """Run the CLI; returns the process exit status.

    0 on success; 2 for a usage error or bad input (one line on stderr naming the input and
    what to do, never a traceback); 1 for an internal error (a bug: one line too, the traceback
    with ``ANISOADA_TRACEBACK=1``); 130 when interrupted (Ctrl-C), 143 when terminated
    (SIGTERM). Warnings are one line each, ``anisoada <command>: warning: …``. Finished runs
    are stored as they complete, so any failure keeps what was already computed.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error (already printed)
        return exit_.code if isinstance(exit_.code, int) else 2
    if getattr(args, "func", None) is None:
        parser.print_usage(sys.stderr)
        print("anisoada: error: give a command (see anisoada --help)", file=sys.stderr)
        return 2
    command = _command(args)
    try:
        with one_line_warnings(command), terminate_as_interrupt():
            status = args.func(args)
    except KeyboardInterrupt as interrupt:
        what, code = (
            ("terminated", 143) if isinstance(interrupt, Terminated) else ("interrupted", 130)
        )
        print(
            f"anisoada {command}: {what}; finished runs are stored and a re-run resumes from them",
            file=sys.stderr,
        )
        return code
    except SystemExit:
        raise
    except BrokenPipeError:
        # stdout closed early (`anisoada ... | head`): stop quietly, as the Python docs advise.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except BaseException as error:
        if os.environ.get("ANISOADA_TRACEBACK"):
            raise
        return fail(command, error)
    return 0 if status is None else int(status)


def _command(args: argparse.Namespace) -> str:
    """``sweep``, or ``data fetch`` for a command with actions."""
    parts = [args.command]
    for name in ("data_command",):
        if getattr(args, name, None):
            parts.append(getattr(args, name))
    return " ".join(parts)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
