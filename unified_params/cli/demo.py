"""``unified-params demo``: the textbook chapter, side by side on every backend.

Frameworks are imported paddle first (tensorflow-then-paddle segfaults).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import access, init, spec
from ..backends import IMPORT_ORDER
from ..backends.importing import import_framework
from .render import table

S = spec


def _mlp() -> S.Sequential:
    return S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 1))


def _rgnet() -> S.Sequential:
    def block1() -> S.Sequential:
        return S.Sequential(S.Linear(4, 8), S.ReLU(), S.Linear(8, 4), S.ReLU())

    return S.Sequential(S.Sequential(*[block1() for _ in range(4)]), S.Linear(4, 1))


def _shared() -> S.Sequential:
    shared = S.Linear(8, 8)
    return S.Sequential(S.Linear(4, 8), S.ReLU(), shared, S.ReLU(), shared, S.ReLU(), S.Linear(8, 1))


def _custom_init(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """The chapter's custom init: U(5, 10) w.p. 1/4, 0 w.p. 1/2, U(-10, -5) w.p. 1/4."""
    w = rng.uniform(-10, 10, shape)
    return w * (np.abs(w) >= 5)


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray):
        text = np.array2string(np.round(value, 4), separator=", ", max_line_width=200)
        return " ".join(text.split())
    return str(value)


#: Rows whose label starts with this show a framework's own name: they differ by design.
NATIVE = "native: "


def _steps() -> list[tuple[str, str, Callable[[str], Any]]]:
    """(section, what is shown, how to compute it on one backend)."""

    def mlp(backend: str) -> Any:
        model = _mlp().build(backend)
        init.initialize(model, init.Uniform(-0.5, 0.5), seed=0)
        return access.wrap(model)

    def initialised(rules: Any) -> Callable[[str], Any]:
        def run(backend: str) -> Any:
            m = mlp(backend)
            init.initialize(m, rules, seed=42)
            return m

        return run

    normal = initialised({"*.weight": init.Normal(0, 0.01), "*.bias": init.Zeros()})
    constant = initialised({"*.weight": init.Constant(1), "*.bias": init.Zeros()})
    per_layer = initialised([("0.weight", init.XavierUniform()), ("2.weight", init.Constant(42))])
    custom = initialised({"*.weight": _custom_init})

    def direct_set(backend: str) -> Any:
        p = mlp(backend)["0.weight"]
        p[:] += 1
        p[0, 0] = 42
        return p[0]

    def shared(backend: str) -> Any:
        return access.wrap(_shared().build(backend))

    def shared_write(backend: str) -> Any:
        m = shared(backend)
        m["2.weight"][0, 0] = 100
        return m["4.weight"][0, 0] == 100 and m["4.weight"].native is m["2.weight"].native

    return [
        ("Parameter access", NATIVE + "m[2].type_name", lambda b: mlp(b)[2].type_name),
        ("Parameter access", "m[2].kind", lambda b: mlp(b)[2].kind),
        ("Parameter access", "m[2]['bias'].numpy()", lambda b: mlp(b)[2]["bias"].numpy()),
        ("Parameter access", "m['2.weight'].grad is None", lambda b: mlp(b)["2.weight"].grad is None),
        ("All at once", "list(m[0].params())", lambda b: list(mlp(b)[0].params())),
        (
            "All at once",
            "{path: canonical shape}",
            lambda b: {k: p.shape for k, p in mlp(b).params().items()},
        ),
        ("All at once", "m.count()", lambda b: mlp(b).count()),
        ("All at once", "m['2.bias'][0]", lambda b: mlp(b)["2.bias"][0]),
        ("Nested blocks", "rgnet.count()", lambda b: access.wrap(_rgnet().build(b)).count()),
        (
            "Nested blocks",
            "rgnet[0][1][0]['bias'].path",
            lambda b: access.wrap(_rgnet().build(b))[0][1][0]["bias"].path,
        ),
        (
            "Built-in init",
            "Normal(0, .01) weights, Zeros bias: m['0.weight'][0]",
            lambda b: normal(b)["0.weight"][0],
        ),
        ("Built-in init", "the same: m['0.bias'][0]", lambda b: normal(b)["0.bias"][0]),
        ("Built-in init", "Constant(1): m['0.weight'][0]", lambda b: constant(b)["0.weight"][0]),
        (
            "Built-in init",
            "Xavier on 0, Constant(42) on 2: m['0.weight'][0]",
            lambda b: per_layer(b)["0.weight"][0],
        ),
        (
            "Built-in init",
            "the same: m['2.weight'].numpy('canonical')",
            lambda b: per_layer(b)["2.weight"].numpy("canonical"),
        ),
        ("Custom init", "U(5,10) | 0 | U(-10,-5): m['0.weight'][:2]", lambda b: custom(b)["0.weight"][:2]),
        ("Direct set", "p[:] += 1; p[0, 0] = 42; p[0]", direct_set),
        ("Tying", "len(m.children())", lambda b: len(shared(b).children())),
        ("Tying", "unique layers (modules() - root)", lambda b: len(shared(b).modules()) - 1),
        ("Tying", "m['2.weight'].aliases", lambda b: shared(b)["2.weight"].aliases),
        ("Tying", "m.count()", lambda b: shared(b).count()),
        ("Tying", "write via 2, seen via 4", shared_write),
    ]


def demo(backends: Sequence[str], out: Any = sys.stdout, plot: str | None = None) -> bool:
    """Print the chapter's results for each backend, side by side.

    Returns True when every row agrees across the backends. With ``plot``,
    saves histograms of the seeded MLP's parameters, one row per backend.

    Examples:
        >>> import io
        >>> demo(["torch"], out=io.StringIO())
        True
    """
    warnings.filterwarnings("ignore", message="No ccache found")
    for name in sorted(backends, key=IMPORT_ORDER.index):
        import_framework(name)
    rows = []
    for section, label, compute in _steps():
        results = [_fmt(compute(b)) for b in backends]
        rows.append((section, label, results))
    print("unified-params demo: the textbook chapter, the same calls on every backend", file=out)
    print(
        "values: up.initialize(model, up.init.Uniform(-0.5, 0.5), seed=0), then each cell's own init",
        file=out,
    )
    for section in dict.fromkeys(r[0] for r in rows):
        shown = [_row(label, results, backends) for sec, label, results in rows if sec == section]
        table(section, ["call", *_columns(backends), "agree"], shown, out)
    for name in backends:
        print(f"\nup.summary of the shared-layer model ({name}):", file=out)
        print(access.summary(_shared().build(name)), file=out)
    if plot:
        _plot(backends, plot)
        print(f"\nparameter histograms written to {plot}", file=out)
    checked = [r for r in rows if not r[1].startswith(NATIVE)]
    agree = sum(len(set(r[2])) == 1 for r in checked)
    print(
        f"\n{agree}/{len(checked)} results agree across {', '.join(backends)}"
        f" ({len(rows) - len(checked)} row shows each framework's own class name).",
        file=out,
    )
    return agree == len(checked)


def _columns(backends: Sequence[str]) -> list[str]:
    return list(backends)


def _row(label: str, results: list[str], backends: Sequence[str]) -> list[str]:
    same = len(set(results)) == 1
    verdict = "yes" if same else ("by design" if label.startswith(NATIVE) else "DIFFERS")
    return [label, *results, verdict]


def _plot(backends: Sequence[str], path: str) -> None:
    from .. import plot

    models = {}
    for name in backends:
        models[name] = _mlp().build(name)
        init.initialize(models[name], init.Normal(0, 0.5), seed=0)
    plot.compare(models).savefig(path)
