"""A neutral architecture spec that builds the same model in every framework.

Describe a model once, then build it natively, already built (Keras variables
exist), with the same canonical paths and shapes on every backend.

Examples:
    >>> net = Sequential(Linear(4, 8), ReLU(), Linear(8, 1))
    >>> torch_model = net.build("torch")
    >>> [type(layer).__name__ for layer in torch_model]
    ['Linear', 'ReLU', 'Linear']

One spec object used at two positions becomes one shared native layer.
Arguments follow PyTorch (``momentum=0.1`` is converted to Keras' and Paddle's
``0.9``). Recurrent layers are batch-first and return the whole sequence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ._core.errors import UnsupportedError, received

#: What a layer takes or gives along one axis: ``("features", 8)``,
#: ``("channels", 3)``, or ``None`` when unknown.
Size = tuple[str, int] | None
#: A layer that gives what it gets (an activation).
KEEPS: tuple[Size, Size] = (None, None)
#: What ends a chain check: the layer changes the axes (Flatten).
RESHAPES: tuple[Size, Size] = (None, ("reshaped", 0))


class Layer:
    """Base of every spec layer.

    Examples:
        >>> Linear(4, 8).build("torch")
        Linear(in_features=4, out_features=8, bias=True)
    """

    #: Fields that must be positive integers, checked when the spec is made.
    POSITIVE: ClassVar[tuple[str, ...]] = ()

    def build(self, backend: str, input_shape: tuple[int | None, ...] | None = None) -> Any:
        """Build this spec as a native, already-built model of ``backend``.

        Args:
            backend: A backend's name (``"torch"``, ``"keras"``, ``"paddle"``;
                `unified_params.backends.names` lists them).
            input_shape: The input shape without the batch axis, channels
                first for images (``(3, 32, 32)``). Only Keras needs it, and
                only when it cannot be read off the first layer (a model
                that starts with a Flatten, or flattens a feature map).

        Raises:
            BackendNotInstalledError: The framework is not installed.
            UnsupportedError: The spec cannot be expressed in that framework.
        """
        builder = _Builder(backend)
        native = builder.build(self)
        builder.native.finish(native, self, input_shape)
        return native

    def input_shape(self) -> tuple[int | None, ...] | None:
        """The input shape (no batch axis, channels first) this layer implies.

        ``None`` when the layer works on any shape (ReLU, Flatten).

        Examples:
            >>> Linear(4, 8).input_shape()
            (4,)
        """
        return None

    def sizes(self) -> tuple[Size, Size]:
        """What the layer takes and gives along the axis it works on: each a
        ``(axis, size)`` pair, ``axis`` being ``"features"`` (the last axis)
        or ``"channels"`` (axis 1); ``None`` where nothing is known or the
        layer keeps what it gets (ReLU).

        Examples:
            >>> Linear(4, 8).sizes()
            (('features', 4), ('features', 8))
        """
        return KEEPS

    def __post_init__(self) -> None:
        for name in self.POSITIVE:
            _check_positive(self, name, getattr(self, name))


@dataclass(eq=False)
class Linear(Layer):
    """A fully connected layer: torch/paddle ``Linear``, Keras ``Dense``."""

    in_features: int
    out_features: int
    bias: bool = True
    POSITIVE: ClassVar[tuple[str, ...]] = ("in_features", "out_features")

    def input_shape(self):
        return (self.in_features,)

    def sizes(self):
        return ("features", self.in_features), ("features", self.out_features)


@dataclass(eq=False)
class _Convolution(Layer):
    """Fields every convolution spec shares; ``SPATIAL`` is its number of spatial axes."""

    in_channels: int
    out_channels: int
    kernel_size: int | tuple[int, ...]
    stride: int = 1
    SPATIAL: ClassVar[int] = 2
    POSITIVE: ClassVar[tuple[str, ...]] = ("in_channels", "out_channels", "kernel_size", "stride")

    def input_shape(self):
        return (self.in_channels,) + (None,) * self.SPATIAL

    def sizes(self):
        return ("channels", self.in_channels), ("channels", self.out_channels)


@dataclass(eq=False)
class Conv2d(_Convolution):
    """A 2-D convolution; ``padding`` is ``0`` or ``"same"``.

    With ``groups``, a grouped convolution; with ``groups == in_channels``, a
    depthwise one (Keras ``DepthwiseConv2D`` with ``depth_multiplier =
    out_channels // in_channels``).
    """

    padding: int | str = 0
    bias: bool = True
    groups: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(self, "groups", self.groups)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise UnsupportedError(
                f"{self!r}: groups={self.groups} must divide in_channels={self.in_channels} and "
                f"out_channels={self.out_channels}. Expected a common divisor. "
                + received(groups=self.groups)
            )


@dataclass(eq=False)
class Conv1d(_Convolution):
    """A 1-D convolution over ``(batch, channels, length)`` (no padding)."""

    SPATIAL: ClassVar[int] = 1


@dataclass(eq=False)
class Conv3d(_Convolution):
    """A 3-D convolution over ``(batch, channels, depth, height, width)`` (no padding)."""

    SPATIAL: ClassVar[int] = 3


@dataclass(eq=False)
class ConvTranspose1d(_Convolution):
    """A 1-D transposed convolution (no padding)."""

    SPATIAL: ClassVar[int] = 1


@dataclass(eq=False)
class ConvTranspose2d(_Convolution):
    """A 2-D transposed convolution (no padding)."""


@dataclass(eq=False)
class ConvTranspose3d(_Convolution):
    """A 3-D transposed convolution (no padding)."""

    SPATIAL: ClassVar[int] = 3


@dataclass(eq=False)
class MultiheadAttention(Layer):
    """Self-attention over ``(batch, time, embed_dim)`` with ``num_heads`` heads.

    torch ``MultiheadAttention(batch_first=True)``, Keras
    ``MultiHeadAttention(key_dim=embed_dim // num_heads)``, Paddle
    ``MultiHeadAttention``. Call it as self-attention: ``(x, x, x)``.
    ``bias=False``: no projection biases (Keras ``use_bias=False``, Paddle
    ``bias_attr=False``).
    """

    embed_dim: int
    num_heads: int
    bias: bool = True
    POSITIVE: ClassVar[tuple[str, ...]] = ("embed_dim", "num_heads")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.embed_dim % self.num_heads:
            raise UnsupportedError(
                f"{self!r}: embed_dim={self.embed_dim} is not a multiple of num_heads={self.num_heads}. "
                "Expected heads of equal size. "
                + received(embed_dim=self.embed_dim, num_heads=self.num_heads)
            )

    def input_shape(self):
        return (None, self.embed_dim)

    def sizes(self):
        return ("features", self.embed_dim), ("features", self.embed_dim)


@dataclass(eq=False)
class BatchNorm2d(Layer):
    """Batch normalisation over channels, with PyTorch's ``momentum`` convention;
    ``affine=False``: no weight and bias (Keras' ``scale=False, center=False``).

    Examples:
        >>> norm = BatchNorm2d(4, affine=False).build("torch")
        >>> norm.weight is None, norm.bias is None
        (True, True)
    """

    num_features: int
    eps: float = 1e-5
    momentum: float = 0.1
    affine: bool = True
    POSITIVE: ClassVar[tuple[str, ...]] = ("num_features",)

    def input_shape(self):
        return (self.num_features, None, None)

    def sizes(self):
        return ("channels", self.num_features), ("channels", self.num_features)


@dataclass(eq=False)
class LayerNorm(Layer):
    """Layer normalisation over the last axis of size ``normalized_shape``."""

    normalized_shape: int
    eps: float = 1e-5
    POSITIVE: ClassVar[tuple[str, ...]] = ("normalized_shape",)

    def input_shape(self):
        return (self.normalized_shape,)

    def sizes(self):
        return ("features", self.normalized_shape), ("features", self.normalized_shape)


@dataclass(eq=False)
class RMSNorm(Layer):
    """Root-mean-square normalisation over the last axis of size ``normalized_shape``,
    ``x / sqrt(mean(x**2) + eps) * weight``; ``eps=None`` is torch's default, the
    float32 machine epsilon (Keras ``RMSNormalization``, Flax NNX ``RMSNorm``;
    Paddle has no such layer).

    Examples:
        >>> RMSNorm(8).build("torch")
        RMSNorm((8,), eps=None, elementwise_affine=True)
    """

    normalized_shape: int
    eps: float | None = None
    POSITIVE: ClassVar[tuple[str, ...]] = ("normalized_shape",)

    #: What ``eps=None`` means: torch's ``torch.finfo(torch.float32).eps``.
    DEFAULT_EPS: ClassVar[float] = 2.0**-23

    def epsilon(self) -> float:
        """The eps every framework is given (torch's default for ``None``).

        Examples:
            >>> RMSNorm(8).epsilon() == 2.0**-23, RMSNorm(8, eps=1e-6).epsilon()
            (True, 1e-06)
        """
        return self.DEFAULT_EPS if self.eps is None else self.eps

    def input_shape(self):
        return (self.normalized_shape,)

    def sizes(self):
        return ("features", self.normalized_shape), ("features", self.normalized_shape)


@dataclass(eq=False)
class GroupNorm(Layer):
    """Group normalisation: ``num_channels`` channels in ``num_groups`` groups of
    consecutive channels, with a weight and a bias per channel.

    Examples:
        >>> GroupNorm(2, 8).build("torch")
        GroupNorm(2, 8, eps=1e-05, affine=True, bias=True)
    """

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    POSITIVE: ClassVar[tuple[str, ...]] = ("num_groups", "num_channels")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.num_channels % self.num_groups:
            raise UnsupportedError(
                "GroupNorm splits its channels into equal groups. Expected num_channels a multiple of "
                "num_groups. " + received(num_groups=self.num_groups, num_channels=self.num_channels)
            )

    def input_shape(self):
        return (self.num_channels, None, None)

    def sizes(self):
        return ("channels", self.num_channels), ("channels", self.num_channels)


@dataclass(eq=False)
class Embedding(Layer):
    """A lookup table of ``num_embeddings`` rows of size ``embedding_dim``."""

    num_embeddings: int
    embedding_dim: int
    POSITIVE: ClassVar[tuple[str, ...]] = ("num_embeddings", "embedding_dim")

    def input_shape(self):
        return (None,)

    def sizes(self):
        return ("indices", 0), ("features", self.embedding_dim)


@dataclass(eq=False)
class _Recurrent(Layer):
    """What every recurrent spec layer takes and gives: ``(batch, time,
    input_size)`` in, ``(batch, time, hidden_size)`` out."""

    input_size: int
    hidden_size: int
    POSITIVE: ClassVar[tuple[str, ...]] = ("input_size", "hidden_size")

    def input_shape(self):
        return (None, self.input_size)

    def sizes(self):
        return ("features", self.input_size), ("features", self.hidden_size)


@dataclass(eq=False)
class RNN(_Recurrent):
    """A one-layer, batch-first Elman RNN, ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``
    (``nonlinearity="relu"``: relu), returning the whole sequence (Keras and
    Paddle: ``SimpleRNN``; Flax NNX: ``RNN(SimpleCell)``).

    Examples:
        >>> RNN(3, 5).build("torch")
        RNN(3, 5, batch_first=True)
    """

    nonlinearity: str = "tanh"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nonlinearity not in ("tanh", "relu"):
            raise UnsupportedError(
                "Unknown nonlinearity. Expected 'tanh' or 'relu', as torch's nn.RNN takes. "
                + received(nonlinearity=self.nonlinearity)
            )


@dataclass(eq=False)
class LSTM(_Recurrent):
    """A one-layer, batch-first LSTM returning the whole sequence."""


@dataclass(eq=False)
class GRU(_Recurrent):
    """A one-layer, batch-first GRU (Keras: ``reset_after=True``)."""


@dataclass(eq=False)
class ReLU(Layer):
    """The rectifier."""


@dataclass(eq=False)
class Flatten(Layer):
    """Flatten all axes after the batch axis."""

    def sizes(self):
        return RESHAPES


class Sequential(Layer):
    """Layers applied in order; their keys are the paths' keys.

    Children are positional (keys ``"0"``, ``"1"``, ...) or named, given as
    ``(name, layer)`` pairs or one dict, like torch's ``add_module`` and
    paddle's ``add_sublayer``; a named child keeps its name on every backend
    (Keras: the layer's name), so ``"0.block 0.0.bias"`` is one path
    everywhere. Sizes are checked when the spec is made: a chain whose
    neighbours do not fit is refused, naming both.

    Raises:
        UnsupportedError: A child is not a spec layer, a name is empty, has a
            dot or repeats, or two neighbours' sizes do not fit.

    Examples:
        >>> net = Sequential(Linear(4, 8), ReLU(), Linear(8, 1))
        >>> net.keys, len(net.layers)
        (['0', '1', '2'], 3)
        >>> Sequential(("block 0", Linear(4, 4)), ("block 1", Linear(4, 4))).keys
        ['block 0', 'block 1']
    """

    def __init__(self, *layers: Layer | tuple[str, Layer] | dict[str, Layer]):
        if len(layers) == 1 and isinstance(layers[0], dict):
            layers = tuple(layers[0].items())
        keys: list[str] = []
        children: list[Layer] = []
        for position, item in enumerate(layers):
            key, layer = item if isinstance(item, tuple) and _is_named(item) else (str(position), item)
            if not isinstance(layer, Layer):
                raise UnsupportedError(
                    "Sequential takes spec layers (up.spec.Linear, ...), optionally as (name, layer) "
                    "pairs or one dict. Expected only spec layers. "
                    + received(layer=layer, type=type(layer).__name__)
                )
            _check_key(key, keys)
            keys.append(key)
            children.append(layer)
        #: The children's keys, in order: positions or the given names.
        self.keys = keys
        #: The children, in order.
        self.layers = children
        _check_chain(self)

    @property
    def named(self) -> bool:
        """Whether any child has a name of its own (not its position)."""
        return any(key != str(i) for i, key in enumerate(self.keys))

    def __repr__(self) -> str:
        if not self.named:
            return f"Sequential({', '.join(map(repr, self.layers))})"
        return (
            f"Sequential({', '.join(f'({k!r}, {x!r})' for k, x in zip(self.keys, self.layers, strict=True))})"
        )

    def input_shape(self):
        return self.layers[0].input_shape() if self.layers else None

    def sizes(self):
        if not self.layers:
            return KEEPS
        taken = next((x.sizes()[0] for x in self.layers if x.sizes() != KEEPS), None)
        given = next((x.sizes()[1] for x in reversed(self.layers) if x.sizes() != KEEPS), None)
        return taken, given


def _is_named(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)


def _check_key(key: str, earlier: list[str]) -> None:
    if not key or "." in key or key in earlier:
        why = "is empty" if not key else "has a dot (paths use dots)" if "." in key else "repeats"
        raise UnsupportedError(
            f"The child name {key!r} {why}. Expected a non-empty name without dots, unique in its "
            "Sequential. " + received(name=key)
        )


def _check_positive(layer: Layer, name: str, value: Any) -> None:
    items = value if isinstance(value, tuple) else (value,)
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
        raise UnsupportedError(
            f"{type(layer).__name__}: {name} must be a positive integer. Expected a size of at least "
            f"1. " + received(**{name: value})
        )


def _check_chain(model: Sequential) -> None:
    """Refuse neighbours whose sizes cannot fit: what one gives, the next must take."""
    given: Size = None
    giver: tuple[str, Layer] | None = None
    for key, layer in zip(model.keys, model.layers, strict=True):
        takes, gives = layer.sizes()
        if (takes, gives) == KEEPS:
            continue
        if given is not None and takes is not None and giver is not None and takes[0] == given[0]:
            if takes[1] != given[1]:
                axis = given[0]
                raise UnsupportedError(
                    f"Layer {giver[0]!r} ({giver[1]!r}) gives {given[1]} {axis}, but the next layer "
                    f"{key!r} ({layer!r}) takes {takes[1]}. Expected neighbouring sizes to fit. "
                    + received(gives=given[1], takes=takes[1])
                )
        given, giver = gives, (key, layer)


class _Builder:
    """Builds one spec tree with one backend's `SpecBuilder`; a spec object seen twice is reused."""

    def __init__(self, backend: str):
        from .backends.registry import spec_builder

        self.native = spec_builder(backend)
        self.made: dict[int, Any] = {}

    def build(self, layer: Layer, name: str | None = None) -> Any:
        """The native layer of a spec; ``name``: the key a named parent gives it."""
        native = self.made.get(id(layer))
        if native is None:
            if isinstance(layer, Sequential):
                names = layer.keys if layer.named else [None] * len(layer.layers)
                kids = [self.build(x, key) for x, key in zip(layer.layers, names, strict=True)]
                native = self.native.sequential(kids, layer.keys if layer.named else None, name)
            else:
                native = self.native.layer(layer, name)
            self.made[id(layer)] = native
        return native


def plain_layer(s: Layer, backend: str, relu: Callable[[], Any], flatten: Callable[[], Any]) -> Any:
    """The layers without parameters every framework has; refuses any other spec."""
    if isinstance(s, ReLU):
        return relu()
    if isinstance(s, Flatten):
        return flatten()
    raise UnsupportedError(
        f"No {backend} layer is known for spec {type(s).__name__}. Expected one of "
        "Sequential, Linear, Conv2d, BatchNorm2d, LayerNorm, Embedding, LSTM, GRU, ReLU, "
        "Flatten. " + received(spec=s)
    )


def first_leaf(layer: Layer) -> Layer:
    """The first layer that is not a Sequential (what the model's input meets)."""
    while isinstance(layer, Sequential) and layer.layers:
        layer = layer.layers[0]
    return layer
