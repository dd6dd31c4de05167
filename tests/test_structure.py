"""Structure: importing loads no framework, and every adapter honours the contract."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import pytest

from tests.conftest import NAMES, needs
from unified_params.backends import get_adapter
from unified_params.backends._base import Adapter

FRAMEWORKS = ("torch", "tensorflow", "keras", "paddle")


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


def test_import_loads_no_framework():
    code = (
        "import sys, unified_params as up, unified_params.spec\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_is_lazy_and_every_public_name_resolves():
    code = (
        "import sys, unified_params as up\n"
        "print('numpy' in sys.modules)\n"
        "missing = [n for n in up.__all__ if getattr(up, n, None) is None]\n"
        "print(missing, sorted(dir(up)) == sorted(up.__all__))\n"
        "print(up.wrap.__module__, up.init.__name__, up.Where.__name__)\n"
        "try:\n    up.no_such_name\nexcept AttributeError as err:\n    print(err)\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "False",  # not even numpy until a name is used
        "[] True",
        "unified_params.access unified_params.init Where",
        "module 'unified_params' has no attribute 'no_such_name'",
    ]


def test_detection_imports_nothing_more():
    needs("torch")
    code = (
        "import sys, torch, unified_params as up\n"
        "print(up.backend_of(torch.nn.Linear(2, 2)))\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'paddle') if m in sys.modules))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["torch", "[]"]


def test_paddle_is_imported_first_only_before_tensorflow():
    """Wrapping a torch model imports no paddle (3 s, and a second OpenMP
    runtime beside torch's); building a Keras model on TensorFlow imports paddle
    before it, so paddle still works afterwards."""
    needs("torch")
    needs("paddle")
    code = (
        "import sys, torch, unified_params as up\n"
        "up.wrap(torch.nn.Linear(2, 2)).params()\n"
        "print(sorted(m for m in ('tensorflow', 'paddle') if m in sys.modules))"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]
    needs("keras")
    code = (
        "import sys, unified_params as up\n"
        "up.spec.Sequential(up.spec.Linear(2, 2)).build('keras')\n"
        "print(sorted(m for m in ('tensorflow', 'paddle') if m in sys.modules))\n"
        "print(up.spec.Sequential(up.spec.Linear(2, 2)).build('paddle').__class__.__module__.split('.')[0])"
    )
    result = _run(code, KERAS_BACKEND="tensorflow")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["['paddle',", "'tensorflow']", "paddle"]


def test_paddle_after_tensorflow_is_refused_not_crashed():
    needs("keras")
    needs("paddle")
    code = (
        "import tensorflow, unified_params as up\n"
        "try:\n"
        "    up.spec.Sequential(up.spec.Linear(2, 2)).build('paddle')\n"
        "except up.UnsupportedError as err:\n"
        "    print('refused:', 'import paddle' in str(err))\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "refused: True"


#: The adapter contract: operations every adapter must implement, and the ones
#: with a default that is right for any framework. The counts are part of the
#: contract: a new operation is a decision, not an accident.
REQUIRED = 18
# 33: `stored_norms`, a wrapper's spectral norm kept in place (Keras SpectralNormalization).
# 34: `code_holder`, the object whose code runs for a position (a Flax NNX stack's layer).
# 35: `default_init`, a zoo layer's own initialisation (transformers' Conv1D).
WITH_DEFAULTS = 35


def test_the_adapter_contract_is_small_and_stays_so():
    operations = [n for n, f in vars(Adapter).items() if inspect.isfunction(f) and not n.startswith("_")]
    assert len(Adapter.__abstractmethods__) == REQUIRED, sorted(Adapter.__abstractmethods__)
    assert len(operations) - REQUIRED == WITH_DEFAULTS, sorted(set(operations) - Adapter.__abstractmethods__)


@pytest.mark.parametrize("name", NAMES)
def test_adapter_implements_every_operation_with_same_signature(name):
    needs(name)
    adapter = get_adapter(name)
    assert isinstance(adapter, Adapter) and adapter.name == name
    cls = type(adapter)
    assert not getattr(cls, "__abstractmethods__", None)
    operations = [n for n, f in vars(Adapter).items() if inspect.isfunction(f) and not n.startswith("_")]
    for op in operations:
        owner = next(k for k in cls.__mro__ if op in vars(k))
        if (
            op in Adapter.__abstractmethods__
        ):  # implemented by the adapter or a shared base, never inherited empty
            assert owner is not Adapter, f"{cls.__name__} inherits the abstract {op}"
        assert inspect.signature(getattr(cls, op)) == inspect.signature(getattr(Adapter, op)), op


def test_adapter_leaf_tables_name_known_kinds():
    from unified_params._core.layouts import KNOWN_KINDS

    for name in NAMES:
        needs(name)
        assert set(get_adapter(name).LEAVES) <= KNOWN_KINDS
