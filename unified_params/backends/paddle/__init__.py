"""PaddlePaddle: ``paddle.nn.Layer`` models.

Paddle stores Linear weights ``(in, out)`` and BatchNorm statistics as
parameters named ``_mean`` / ``_variance`` with ``stop_gradient=True``; the
LSTM/GRU layers keep their flattened ``weight_ih_l0``-style parameters on the
layer itself (their inner cell sublayers reuse the same objects).
``adapter`` translates, ``spec`` builds `unified_params.spec` models,
``internals`` holds every private paddle API used.
"""

from .._exports import lazy

# Each name from its module on first use: the framework-free `leaves` imports alone.
__getattr__ = lazy(__name__, {"ADAPTER": "adapter", "SPEC": "spec"})
__all__ = ["ADAPTER", "SPEC"]
