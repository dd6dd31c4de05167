"""The ``unified-params`` command: ``demo``, ``inspect``, ``summary``, ``conformance``.

Frameworks are imported paddle first (tensorflow-then-paddle segfaults).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._core.errors import UnifiedParamsError
from ..backends.importing import installed
from .demo import demo

__all__ = ["demo", "main"]
BACKENDS = ("torch", "keras", "paddle")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unified-params`` console script.

    Examples:
        >>> main(["inspect", "no-such-file.safetensors"])  # the reason goes to stderr
        2
    """
    parser = argparse.ArgumentParser(prog="unified-params", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="the textbook chapter on every installed backend, side by side")
    run.add_argument("--backends", default=None, help="comma-separated subset of torch,keras,paddle")
    run.add_argument("--plot", default=None, metavar="FILE.png", help="also save parameter histograms")
    look = sub.add_parser("inspect", help="names, shapes, dtypes, ties and metadata of a checkpoint")
    look.add_argument("file", help="a .safetensors file, or a sharded checkpoint's index")
    tree = sub.add_parser("summary", help="up.summary of a spec expression, or a checkpoint's layers")
    tree.add_argument("target", help="a file, or a spec such as 'Sequential(Linear(4, 8), ReLU())'")
    tree.add_argument("--backend", default=None, choices=BACKENDS)
    check = sub.add_parser("conformance", help="run the conformance suite and print the matrix")
    check.add_argument("--backends", default=None, help="comma-separated subset of torch,keras,paddle")
    check.add_argument("--write", default=None, metavar="FILE.md", help="also write the matrix as markdown")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return _dispatch(args)
    except UnifiedParamsError as err:  # a clear sentence, not a traceback
        print(f"unified-params: {err}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "inspect":
        from .files import inspect

        inspect(args.file, sys.stdout)
        return 0
    if args.command == "summary":
        from .files import summary

        summary(args.target, args.backend, sys.stdout)
        return 0
    chosen = args.backends.split(",") if args.backends else [b for b in BACKENDS if installed(b)]
    if not chosen:
        print("No backend installed: pip install 'unified-params[all]'", file=sys.stderr)
        return 2
    if args.command == "conformance":
        from .conformance import run

        return 0 if run(chosen, sys.stdout, args.write) else 1
    return 0 if demo(chosen, plot=args.plot) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
