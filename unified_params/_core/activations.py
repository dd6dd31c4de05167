"""Activations by the names a port compares them by (and normalisations
without weights, which a layer's output may go through as well).

An adapter names the activation a layer's output goes through (its
``output_activation``); the port compares the two names of a pair of layers.
A name stands for one function, the same in every framework that gives it
(tested: a port between each framework's and torch's of the same name agrees,
and one of other names differs), with its settings where they matter:
``"leaky_relu(negative_slope=0.01)"``, ``"elu(alpha=0.5)"``. A setting at
the value every framework defaults to is left out (``"elu"``), so the names
of the common activations stay short. An
adapter that cannot say which function runs gives no name, and the port then
claims nothing. Activations in a row are named in order, ``"relu then
sigmoid"`` (`chain`).

Examples:
    >>> named("leaky_relu", negative_slope=0.3), named("elu", alpha=1.0)
    ('leaky_relu(negative_slope=0.3)', 'elu')
    >>> softmax("linear", -1), softmax("conv2d", 1), softmax("conv2d", -1)
    ('softmax', 'softmax', None)
"""

from __future__ import annotations

from . import layouts

#: Names of activations without settings; ``"none"``: the identity.
PLAIN = frozenset(
    {
        "none", "relu", "relu6", "sigmoid", "tanh", "silu", "hard_sigmoid", "hard_swish", "softsign",
        "mish", "log_sigmoid", "tanh_shrink",
    }
)  # fmt: skip

#: Activations with settings, and each setting's value where every framework
#: has the same default (a leaky ReLU's slope has none: torch's and paddle's is
#: 0.01, Keras' layer's 0.3 and its function's 0.2). torch's ``Softplus`` is
#: the identity from ``threshold`` on; Keras' and jax's never switch, which
#: differs by less than float32's rounding past 20.
SETTINGS: dict[str, dict[str, float | str | None]] = {
    "leaky_relu": {"negative_slope": None},
    "elu": {"alpha": 1.0},
    "celu": {"alpha": 1.0},
    "selu": {"scale": 1.0507009873554805, "alpha": 1.6732632423543772},
    "gelu": {"approximate": "none"},
    "hard_tanh": {"min": -1.0, "max": 1.0},
    "soft_shrink": {"threshold": 0.5},
    "softplus": {"beta": 1.0, "threshold": 20.0},
    # Normalisations without weights (their eps has no common default).
    "layer_norm": {"eps": None},
    "group_norm": {"groups": None, "eps": None},
    "instance_norm": {"eps": None},
}

#: Activations over an axis, named only over the channels (the features of a
#: dense layer's output): see `softmax`.
OVER_AN_AXIS = frozenset({"softmax", "log_softmax"})

#: Layer kinds whose output keeps its channels on axis 1 in the canonical
#: (PyTorch) layout; the features of every other kind listed are last.
_CHANNELS_FIRST = frozenset(
    {
        "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
        "separable_conv2d", *layouts.CHANNEL_NORMS,
    }
)  # fmt: skip
_FEATURES_LAST = frozenset({"linear", "embedding", "mha", "rnn", "lstm", "gru", *layouts.FEATURE_NORMS})


def named(name: str, **settings: float | str) -> str:
    """The name of activation ``name`` with ``settings``: those at their
    common default left out, the others in order, numbers to 6 digits.

    Raises:
        KeyError: ``name`` is no activation with settings.

    Examples:
        >>> named("hard_tanh", min=0, max=1), named("gelu", approximate="tanh")
        ('hard_tanh(min=0)', 'gelu(approximate=tanh)')
    """
    defaults = SETTINGS[name]
    shown = []
    for key, value in settings.items():
        default = defaults.get(key)
        if default is None or _text(value) != _text(default):
            shown.append(f"{key}={_text(value)}")
    return f"{name}({', '.join(shown)})" if shown else name


#: Two activations in a row that compute what one does: a ReLU after a ReLU,
#: a ReLU6 and a ReLU either way round.
_ONE_OF_TWO = {("relu", "relu"): "relu", ("relu6", "relu6"): "relu6", ("relu", "relu6"): "relu6",
               ("relu6", "relu"): "relu6", ("hard_tanh", "hard_tanh"): "hard_tanh"}  # fmt: skip


def chain(names: list[str]) -> str:
    """The name of activations applied one after another (``"none"``: none),
    each pair that computes what one does named as that one.

    Examples:
        >>> chain(["relu", "sigmoid"]), chain(["relu", "relu6"]), chain([])
        ('relu then sigmoid', 'relu6', 'none')
    """
    found: list[str] = []
    for name in names:
        one = _ONE_OF_TWO.get((found[-1], name)) if found else None
        if one is None:
            found.append(name)
        else:
            found[-1] = one
    return " then ".join(found) if found else "none"


def over_channels(kind: str | None, axis: int | None, channels_last: bool = False) -> bool:
    """Whether ``axis`` of the output of a layer of ``kind`` is its channels
    whatever the input's rank: ``-1`` of a channels-last output, and in the
    canonical layout ``1`` of a convolution's or a channel norm's, ``-1`` of
    a dense, embedding, recurrent or feature norm layer's.

    Examples:
        >>> over_channels("batchnorm", 1), over_channels("linear", 1), over_channels("conv2d", -1, True)
        (True, False, True)
    """
    if axis is None:
        return False
    if channels_last or kind in _FEATURES_LAST:
        return axis == -1
    return axis == 1 and kind in _CHANNELS_FIRST


def softmax(kind: str, axis: int | None, *, channels_last: bool = False, log: bool = False) -> str | None:
    """The name of a softmax (``log``: a log-softmax) over ``axis`` of the
    output of a layer of ``kind``: named when the axis is the layer's channels
    (`over_channels`); ``None`` for another axis, or one that means the
    channels only at some input ranks.

    Examples:
        >>> softmax("batchnorm", 1), softmax("linear", 1), softmax("conv2d", -1, channels_last=True)
        ('softmax', None, 'softmax')
    """
    return ("log_softmax" if log else "softmax") if over_channels(kind, axis, channels_last) else None


def normalized(
    kind: str | None,
    axis: int,
    eps: float,
    groups: int | None = None,
    channels: int | None = None,
    *,
    channels_last: bool = False,
) -> str | None:
    """The name of a normalisation without weights of the output of a layer
    of ``kind``: over ``axis`` alone (``groups`` ``None``: a layer norm), or
    over the positions of each of ``groups`` groups of channels (a group norm;
    one channel a group, or ``groups=-1``, is an instance norm). Named where
    ``axis`` is the channels (`over_channels`), else ``None``.

    Examples:
        >>> normalized("linear", -1, 1e-5), normalized("conv2d", 1, 1e-5, groups=8, channels=8)
        ('layer_norm(eps=1e-05)', 'instance_norm(eps=1e-05)')
        >>> normalized("conv2d", -1, 1e-3, groups=2, channels=8, channels_last=True)
        'group_norm(groups=2, eps=0.001)'
    """
    if not over_channels(kind, axis, channels_last):
        return None
    if groups is None:
        return named("layer_norm", eps=eps)
    if groups in (-1, channels):
        return named("instance_norm", eps=eps)
    return named("group_norm", groups=groups, eps=eps)


def _text(value: float | str) -> str:
    return value if isinstance(value, str) else f"{float(value):.6g}"
