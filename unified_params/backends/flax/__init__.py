"""Flax NNX: ``flax.nnx.Module`` models on JAX.

``tables`` holds NNX's layouts as data, ``adapter`` translates, ``spec``
builds `unified_params.spec` models, ``internals`` holds every
version-bound NNX detail used.
"""

from .adapter import ADAPTER, is_trainable
from .spec import SPEC

__all__ = ["ADAPTER", "SPEC", "is_trainable"]
