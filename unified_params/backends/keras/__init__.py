"""Keras 3: ``keras.layers.Layer`` models, on TensorFlow, JAX or torch.

``tables`` holds Keras' layouts as data, ``adapter`` translates,
``engines`` reads, writes and differentiates variables on the engine in use,
``spec`` builds `unified_params.spec` models, ``internals`` holds every
private Keras API used.
"""

from .._exports import lazy

# Each name from its module on first use: the framework-free `leaves` imports alone.
__getattr__ = lazy(__name__, {"ADAPTER": "adapter", "SPEC": "spec", "declare_keys": "adapter"})
__all__ = ["ADAPTER", "SPEC", "declare_keys"]
