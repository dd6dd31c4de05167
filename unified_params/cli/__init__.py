"""The unified-params command: demo, inspect, summary, conformance.

Exit codes: 0 success, 1 a check that failed (cells that differ, a failing
conformance test), 2 a usage or input error (the reason on stderr, no
traceback). Frameworks are imported paddle first (tensorflow-then-paddle
segfaults), with their start-up chatter kept off stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Sequence

from .._core.errors import UnifiedParamsError
from .._version import __version__
from ..backends import IMPORT_ORDER
from ..backends.importing import import_framework, installed
from .demo import demo

__all__ = ["demo", "main"]
BACKENDS = ("torch", "keras", "paddle")
DESCRIPTION = (
    "One API for parameter management over PyTorch, Keras 3 and PaddlePaddle: "
    "demo runs the textbook chapter on every backend, inspect and summary read "
    "checkpoints and specs, conformance runs the conformance suite."
)


class UsageError(UnifiedParamsError):
    """A command line that cannot run as given (exit code 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unified-params`` console script.

    Examples:
        >>> main(["inspect", "no-such-file.safetensors"])  # the reason goes to stderr
        2
        >>> main(["demo", "--backends", "torch,mxnet"])
        2
    """
    parser = argparse.ArgumentParser(prog="unified-params", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"unified-params {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("demo", help="the textbook chapter, one code on every installed backend")
    run.add_argument("--backends", default=None, help="comma-separated subset of torch,keras,paddle")
    run.add_argument("--plot", default=None, metavar="FILE.png", help="also save parameter histograms")
    look = sub.add_parser("inspect", help="names, shapes, dtypes, ties and metadata of a checkpoint")
    look.add_argument("file", help="a .safetensors file, or a sharded checkpoint's index")
    tree = sub.add_parser("summary", help="the summary of a spec expression, or a checkpoint's layers")
    tree.add_argument("target", help="a file, or a spec such as 'Sequential(Linear(4, 8), ReLU())'")
    tree.add_argument("--backend", default=None, choices=BACKENDS)
    check = sub.add_parser("conformance", help="run the conformance suite and print the matrix")
    check.add_argument("--backends", default=None, help="comma-separated subset of torch,keras,paddle")
    check.add_argument("--write", default=None, metavar="FILE.md", help="also write the matrix as markdown")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
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

        summary(args.target, args.backend, sys.stdout, importer=import_quietly)
        return 0
    chosen = chosen_backends(args.backends)
    import_quietly(chosen)
    if args.command == "conformance":
        from .conformance import run

        return 0 if run(chosen, sys.stdout, args.write) else 1
    return 0 if demo(chosen, plot=args.plot) else 1


def chosen_backends(text: str | None) -> list[str]:
    """The backends a ``--backends`` option names (default: every installed one).

    Raises:
        UsageError: An unknown or uninstalled backend, or none at all.

    Examples:
        >>> chosen_backends("torch")
        ['torch']
    """
    if text is None:
        found = [b for b in BACKENDS if installed(b)]
        if not found:
            raise UsageError(
                "No backend is installed. Expected one of torch, keras, paddle: "
                "pip install 'unified-params[all]'. " + "Received: backends=[]"
            )
        return found
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        raise UsageError(
            f"Unknown backend {', '.join(map(repr, unknown)) or '(none given)'}. Expected a "
            f"comma-separated subset of {', '.join(BACKENDS)}. Received: backends={text!r}"
        )
    missing = [b for b in names if not installed(b)]
    if missing:
        raise UsageError(
            f"Backend {', '.join(map(repr, missing))} is not installed. Expected installed "
            f"backends: {', '.join(b for b in BACKENDS if installed(b)) or 'none'}. "
            f"Received: backends={text!r}"
        )
    return list(dict.fromkeys(names))


def import_quietly(backends: Sequence[str]) -> None:
    """Import the backends' frameworks, paddle first, with the log lines their
    native start-up writes straight to the process's stderr kept off it."""
    with _stderr_silenced():
        for name in sorted(backends, key=IMPORT_ORDER.index):
            import_framework(name)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for a while (C++ logging bypasses sys.stderr)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    sys.stderr.flush()
    with open(os.devnull, "w") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
