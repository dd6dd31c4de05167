"""PyTorch: ``torch.nn.Module`` models.

PyTorch's names and layout are the canonical ones, so this adapter declares no
leaves: it only reads and writes. ``adapter`` translates, ``spec`` builds
`unified_params.spec` models, ``internals`` holds every private torch API used.
"""

from .adapter import ADAPTER
from .spec import SPEC

__all__ = ["ADAPTER", "SPEC"]
