"""The unified-params command: demo, inspect, summary, convert, conformance.

Exit codes: 0 success, 1 a check that failed (cells that differ, a failing
conformance test), 2 a usage or input error (the reason on stderr, no
traceback). Frameworks are imported paddle first (tensorflow-then-paddle
segfaults), with their start-up chatter kept off stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Sequence

from .._core.errors import UnifiedParamsError
from .._version import __version__
from ..backends import registry
from ..backends.importing import import_frameworks
from .demo import demo

__all__ = ["demo", "main"]
DESCRIPTION = (
    "One API for parameter management over PyTorch, Keras 3, PaddlePaddle and Flax NNX: "
    "demo runs the textbook chapter on every backend, inspect and summary read "
    "checkpoints and specs, convert moves checkpoints between formats, conformance "
    "runs the conformance suite."
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
    targets = ",".join(registry.targets())
    run.add_argument("--backends", default=None, help=f"comma-separated subset of {targets}")
    run.add_argument("--plot", default=None, metavar="FILE.png", help="also save parameter histograms")
    look = sub.add_parser("inspect", help="names, shapes, dtypes, ties and metadata of a checkpoint")
    look.add_argument("file", help="a .safetensors file, or a sharded checkpoint's index")
    tree = sub.add_parser("summary", help="the summary of a spec expression, or a checkpoint's layers")
    tree.add_argument("target", help="a file, or a spec such as 'Sequential(Linear(4, 8), ReLU())'")
    tree.add_argument("--backend", default=None, choices=registry.names())
    move = sub.add_parser(
        "convert", help="a checkpoint between safetensors and another format (a torch DCP folder)"
    )
    move.add_argument("source", help="a .safetensors file or index, or a folder such as dcp.save writes")
    move.add_argument("destination", help="a name ending in .safetensors, or a folder")
    move.add_argument("--to", default=None, help="the destination's format, when its name does not say")
    move.add_argument("--prefix", default="", help="keep the tensors under this prefix, without it")
    check = sub.add_parser("conformance", help="run the conformance suite and print the matrix")
    check.add_argument("--backends", default=None, help=f"comma-separated subset of {targets}")
    check.add_argument(
        "--suite", default=None, metavar="DIR", help="the conformance suite (tests/conformance)"
    )
    check.add_argument("--write", default=None, metavar="FILE.md", help="also write the matrix as markdown")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", message="No ccache found")
    # JAX reports at INFO that no TPU is present, through a root logger paddle sets to INFO.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
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
    if args.command == "convert":
        from .files import convert

        convert(args.source, args.destination, args.to, args.prefix, sys.stdout, importer=import_quietly)
        return 0
    if args.command == "summary":
        from .files import summary

        summary(args.target, args.backend, sys.stdout, importer=import_quietly)
        return 0
    chosen = chosen_backends(args.backends, one_process=args.command != "conformance")
    if args.command == "conformance":
        from .conformance import run

        return 0 if run(chosen, sys.stdout, args.write, args.suite) else 1
    names = [registry.use_target(t) for t in chosen]
    import_quietly(names)
    return 0 if demo(names, plot=args.plot, labels=chosen) else 1


def chosen_backends(text: str | None, one_process: bool = True) -> list[str]:
    """The backends a ``--backends`` option names (default: every installed one),
    as registry targets (``keras-jax`` names Keras on JAX).

    ``one_process``: the backends run in this process, which holds one engine
    per framework (the conformance command runs one process per engine).

    Raises:
        UsageError: An unknown or uninstalled backend, two engines of one
            framework in one process, or none at all.

    Examples:
        >>> chosen_backends("torch")
        ['torch']
    """
    known = registry.targets()
    if text is None:
        found = [b for b in registry.names() if registry.installed(b)]
        if not found:
            raise UsageError(
                f"No backend is installed. Expected one of {', '.join(registry.names())}: "
                "pip install 'unified-params[all]'. " + "Received: backends=[]"
            )
        return found
    names = list(dict.fromkeys(b.strip() for b in text.split(",") if b.strip()))
    unknown = [b for b in names if b not in known]
    if unknown or not names:
        raise UsageError(
            f"Unknown backend {', '.join(map(repr, unknown)) or '(none given)'}. Expected a "
            f"comma-separated subset of {', '.join(known)}. Received: backends={text!r}"
        )
    frameworks = [registry.split_target(b)[0] for b in names]
    twice = sorted({f for f in frameworks if frameworks.count(f) > 1}) if one_process else []
    if twice:
        raise UsageError(
            f"{', '.join(twice)} is named on two engines; a process runs a framework on one engine. "
            f"Expected one of them per command. Received: backends={text!r}"
        )
    missing = [b for b in names if not registry.installed(b)]
    if missing:
        raise UsageError(
            f"Backend {', '.join(map(repr, missing))} is not installed. Expected installed "
            f"backends: {', '.join(b for b in known if registry.installed(b)) or 'none'}. "
            f"Received: backends={text!r}"
        )
    return names


def import_quietly(backends: Sequence[str]) -> None:
    """Import the backends' frameworks, paddle first, with the log lines their
    native start-up writes straight to the process's stderr kept off it."""
    with _stderr_silenced():
        import_frameworks(backends)


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
