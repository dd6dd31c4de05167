"""A gradient slot for frameworks whose variables have none (Keras).

torch and paddle keep ``.grad`` on the parameter; a Keras variable does not,
so gradients computed with ``tf.GradientTape`` (or ``nnx.grad``) are kept
here, keyed by the variable's identity and dropped when the variable is
garbage collected. A variable that takes no weak reference (an NNX
variable) is kept alive with its gradient until the model that produced the
gradient is collected, so its identity cannot be reused meanwhile.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np


class GradStore:
    """Gradients by variable identity, released with their variable.

    Examples:
        >>> class Var: pass
        >>> store, v = GradStore(), Var()
        >>> store.get(v) is None
        True
        >>> store.put(v, np.ones(2)); store.get(v).tolist()
        [1.0, 1.0]
    """

    def __init__(self) -> None:
        self._grads: dict[int, np.ndarray] = {}
        self._held: dict[int, Any] = {}
        self._lock = threading.Lock()

    def get(self, var: Any) -> np.ndarray | None:
        """The stored gradient (a copy), or ``None``."""
        grad = self._grads.get(id(var))
        return None if grad is None else grad.copy()

    def put(self, var: Any, grad: np.ndarray, owner: Any = None) -> None:
        """Store a gradient for ``var`` until the variable is collected (or, for
        a variable without weak references, until ``owner`` is)."""
        key = id(var)
        with self._lock:
            if key not in self._grads:
                try:
                    weakref.finalize(var, self._grads.pop, key, None)
                except TypeError:
                    if owner is None:
                        raise
                    self._held[key] = var
                    weakref.finalize(owner, self._release, key)
            self._grads[key] = np.array(grad, copy=True)

    def _release(self, key: int) -> None:
        with self._lock:
            self._grads.pop(key, None)
            self._held.pop(key, None)

    def clear(self, var: Any) -> None:
        """Forget the gradient of ``var``."""
        with self._lock:
            self._grads.pop(id(var), None)
            self._held.pop(id(var), None)
