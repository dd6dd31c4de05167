"""Doctest set-up: the names the docstring examples use.

Docstring examples of the view use ``m``, a small torch MLP, and ``np``.
Frameworks are imported paddle first (tensorflow-then-paddle segfaults).
"""

from __future__ import annotations

import importlib.util

import pytest

for _name in ("paddle", "torch"):
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name)


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import numpy as np

    doctest_namespace["np"] = np
    if importlib.util.find_spec("torch") is not None:
        import torch

        import unified_params as up

        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU())
        doctest_namespace["m"] = up.wrap(net)
        doctest_namespace["up"] = up
