"""Flax NNX: ``flax.nnx.Module`` models on JAX.

``tables`` holds NNX's layouts as data, ``adapter`` translates, ``spec``
builds `unified_params.spec` models, ``internals`` holds every
version-bound NNX detail used.
"""

from .._exports import lazy

# Each name from its module on first use: the framework-free `leaves` imports alone.
__getattr__ = lazy(__name__, {"ADAPTER": "adapter", "SPEC": "spec", "is_trainable": "adapter"})
__all__ = ["ADAPTER", "SPEC", "is_trainable"]
