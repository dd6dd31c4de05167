"""PyTorch: ``torch.nn.Module`` models.

PyTorch's names and layout are the canonical ones, so this adapter declares no
leaves: it only reads and writes. ``adapter`` translates, ``spec`` builds
`unified_params.spec` models, ``internals`` holds every private torch API used.
"""

from .._exports import lazy

# Each name from its module on first use: the framework-free `leaves` imports alone.
__getattr__ = lazy(__name__, {"ADAPTER": "adapter", "SPEC": "spec"})
__all__ = ["ADAPTER", "SPEC"]
