"""Keras 3: ``keras.layers.Layer`` models, on TensorFlow, JAX or torch.

``tables`` holds Keras' layouts as data, ``adapter`` translates,
``engines`` reads, writes and differentiates variables on the engine in use,
``spec`` builds `unified_params.spec` models, ``internals`` holds every
private Keras API used.
"""

from .adapter import ADAPTER, declare_keys
from .spec import SPEC

__all__ = ["ADAPTER", "SPEC", "declare_keys"]
