"""Every private PaddlePaddle API this adapter uses, checked against paddle 3.3.1.

``tests/test_internals.py`` fails loudly when a newer paddle changes one.
"""

from __future__ import annotations

from typing import Any

from paddle import nn

from .._dicts import Slots

#: paddle 3.3.1: ``nn.Layer`` keeps children in ``_sub_layers``, parameters in
#: ``_parameters``, buffers in ``_buffers`` (all dicts), the names of
#: ``persistable=False`` buffers in ``_non_persistable_buffer_names_set`` and
#: the hooks it runs before each call in the dict ``_forward_pre_hooks``.
SLOTS = Slots(
    children="_sub_layers",
    params="_parameters",
    buffers="_buffers",
    transient="_non_persistable_buffer_names_set",
    pre_hooks="_forward_pre_hooks",
)
#: paddle 3.3.1: the pre-hooks ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm``
#: register, each computing the leaf it names as ``name`` (in private modules).
NORM_HOOKS = (nn.utils.weight_norm_hook.WeightNorm, nn.utils.spectral_norm_hook.SpectralNorm)
#: paddle 3.3.1: by make, the weight norm's hook keeps its leaf's axis as ``dim``
#: (``-1``: the whole leaf) and ``g`` as a vector along that axis; the spectral
#: norm's, the axis it puts first as ``dim``.
LEAF_NORM_HOOKS = {"weight": NORM_HOOKS[0], "spectral": NORM_HOOKS[1]}
#: paddle 3.3.1: the private base of BatchNorm1D/2D/3D.
BATCH_NORM = nn.layer.norm._BatchNormBase


def hyperparameter(module: Any, name: str) -> Any:
    """paddle 3.3.1 keeps eps, momentum, groups and a GroupNorm's groups as
    ``_epsilon``, ``_momentum``, ``_groups``, ``_num_groups``, and an
    activation layer's settings as ``_approximate`` (GELU), ``_alpha`` (ELU,
    CELU, SELU), ``_scale`` (SELU), ``_negative_slope`` (LeakyReLU), ``_min``
    and ``_max`` (Hardtanh), ``_threshold`` (Softshrink, Softplus), ``_beta``
    (Softplus) and ``_axis`` (Softmax, LogSoftmax), and a normalisation's
    ``_normalized_shape`` (LayerNorm), ``_num_channels`` (GroupNorm) and
    ``_data_format`` (GroupNorm, InstanceNorm*D): no public attribute."""
    return getattr(module, f"_{name}", None)


def data_format(layer: Any) -> str | None:
    """A layer's data format (``"NCHW"``, ``"NHWC"``, ...), where it keeps one:
    paddle 3.3.1 keeps it as ``_data_format`` on convolutions and
    normalisations, as ``data_format`` on poolings (2D, 3D), none documented."""
    own = vars(layer)  # not getattr: a miss goes through paddle's __getattr__ and its raise
    found = own.get("_data_format") or own.get("data_format")
    return found if isinstance(found, str) else None


def set_hyperparameter(module: Any, name: str, value: float) -> None:
    """Set ``_epsilon`` or ``_momentum`` (paddle 3.3.1), read by every forward."""
    setattr(module, f"_{name}", value)


def convolution(layer: Any) -> tuple[list[int], list[int], list[int], Any, str, str]:
    """A convolution's kernel size, stride and dilation (lists per spatial axis),
    its ``padding`` argument as given (an int, a string, or a list), its
    padding mode and its data format: paddle 3.3.1 keeps them as
    ``_kernel_size``, ``_stride``, ``_dilation``, ``_padding``,
    ``_padding_mode`` and ``_data_format`` on every ``Conv*D`` and
    ``Conv*DTranspose`` (no public attribute)."""
    return (
        list(layer._kernel_size),
        list(layer._stride),
        list(layer._dilation),
        layer._padding,
        layer._padding_mode,
        layer._data_format,
    )


#: paddle 3.3.1's pooling layers with a window.
MAX_POOLS = (nn.MaxPool1D, nn.MaxPool2D, nn.MaxPool3D)
AVG_POOLS = (nn.AvgPool1D, nn.AvgPool2D, nn.AvgPool3D)


def pooling(layer: Any) -> tuple[Any, Any, Any, bool, bool | None, Any, str]:
    """A pooling layer's kernel size and stride (an int or one per axis;
    stride ``None`` means the kernel's), its ``padding`` argument as given,
    ``ceil_mode``, an average's ``exclusive`` (``None`` for a max), its
    divisor override and its data format: paddle 3.3.1 keeps them on the
    layer as ``kernel_size`` (1D) or ``ksize`` (2D, 3D), ``stride``,
    ``padding``, ``ceil_mode``, ``exclusive``, ``divisor`` (2D, 3D) and
    ``data_format`` (2D, 3D; 1D is channels first), none documented."""
    kernel = layer.kernel_size if hasattr(layer, "kernel_size") else layer.ksize
    exclusive = bool(layer.exclusive) if isinstance(layer, AVG_POOLS) else None
    return (
        kernel,
        layer.stride,
        layer.padding,
        bool(layer.ceil_mode),
        exclusive,
        getattr(layer, "divisor", None),
        getattr(layer, "data_format", "NCL"),
    )


def pad_layer(layer: Any) -> tuple[list[int], str, float] | None:
    """A padding layer's amounts (last axis first), mode and fill value:
    paddle 3.3.1 keeps them as ``padding``, ``_mode`` and ``value`` on
    ``Pad1D/2D/3D`` and ``ZeroPad1D/2D/3D``; ``None`` for any other layer."""
    if not isinstance(layer, (nn.Pad1D, nn.Pad2D, nn.Pad3D, nn.ZeroPad1D, nn.ZeroPad2D, nn.ZeroPad3D)):
        return None
    return [int(p) for p in layer.padding], layer._mode, float(layer.value)


def initialized(tensor: Any) -> bool:
    """Whether a tensor holds values: paddle 3.3.1 makes a layer's parameters
    under ``paddle.LazyGuard`` with a shape and no values until each is
    initialised or set (``Tensor._is_initialized``, private)."""
    return bool(tensor._is_initialized())
