"""The property tests' architectures: the package's public strategies
(`unified_params.testing.strategies`), each spec with its family and an input."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unified_params import spec as S
from unified_params.testing.strategies import example_input, family, specs


@dataclass
class Architecture:
    """A spec and what it takes as input."""

    spec: S.Sequential
    family: str

    @classmethod
    def of(cls, spec: S.Sequential) -> Architecture:
        return cls(spec, family(spec))

    def example_input(self, seed: int = 0) -> np.ndarray:
        return example_input(self.spec, batch=2, size=5, seed=seed)

    def __repr__(self) -> str:
        return f"Architecture({self.family}, {self.spec!r})"


architectures = specs().map(Architecture.of)
