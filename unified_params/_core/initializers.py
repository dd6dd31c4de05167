"""The initializer catalogue: numpy math in the canonical layout.

Every initializer draws values for the canonical shape of a parameter, from a
``numpy.random.Generator`` that the engine (``_core/initialize.py``) seeds per
parameter, so the same seed gives the same float32 values on every backend.

Built-in initializers whose elements are independent (``elementwise``) describe
their distribution as a `Law`; the engine draws those in fixed-size
chunks, in parallel, without changing the values. Others override
[Initializer.sample][unified_params.init.Initializer.sample] and get the whole shape at once.
"""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import InitError, received
from .fans import NONLINEARITIES, calculate_gain, channels_last_fans, fans
from .layouts import RECURRENT, base_name

if TYPE_CHECKING:
    from .view import Param


@dataclass(frozen=True)
class Law:
    """An element-wise distribution: ``constant``, ``normal``, ``uniform`` or
    ``truncnormal`` (mean, std, then absolute bounds ``low``/``high``)."""

    family: str
    a: float = 0.0
    b: float = 1.0
    low: float = -math.inf
    high: float = math.inf

    def bound(self) -> float:
        """The largest magnitude a draw can take (12 standard deviations for a normal).

        Examples:
            >>> Law("uniform", -3.0, 2.0).bound(), Law("normal", 1.0, 0.5).bound()
            (3.0, 7.0)
        """
        if self.family == "constant":
            return abs(self.a)
        if self.family == "uniform":
            return max(abs(self.a), abs(self.b))
        spread = abs(self.a) + 12 * abs(self.b)
        return min(spread, max(abs(self.low), abs(self.high)))

    def draw(self, n: int, rng: np.random.Generator, dtype: Any) -> np.ndarray:
        """``n`` independent draws of ``dtype`` (float32 or float64).

        Examples:
            >>> Law("uniform", 2.0, 3.0).draw(4, np.random.default_rng(0), np.float32).dtype
            dtype('float32')
        """
        out = np.empty(n, dtype=dtype)
        self.fill(out, rng)
        return out

    def fill(self, out: np.ndarray, rng: np.random.Generator) -> None:
        """Draw into a 1-D float32 or float64 array in place (no temporary)."""
        dtype = out.dtype.type
        if self.family == "constant":
            out.fill(self.a)
            return
        if self.family == "uniform":
            rng.random(out=out, dtype=dtype)
            out *= dtype(self.b - self.a)
            out += dtype(self.a)
            return
        rng.standard_normal(out=out, dtype=dtype)
        out *= dtype(self.b)
        out += dtype(self.a)
        if self.family == "truncnormal":
            bad = (out < self.low) | (out > self.high)
            while bad.any():  # rejection: acceptance was checked to be reasonable
                redraw = rng.standard_normal(int(bad.sum()), dtype=dtype) * dtype(self.b) + dtype(self.a)
                out[bad] = redraw
                bad = (out < self.low) | (out > self.high)


class Initializer:
    """Base of every initializer; subclass it for a custom one.

    Override `sample`; it may read the parameter's ``path``, ``name``,
    ``layer_kind`` and ``shape`` (canonical). Values are in canonical layout.

    Examples:
        >>> class Halves(Initializer):
        ...     def sample(self, shape, rng, param):
        ...         return np.full(shape, 0.5)
        >>> Halves()((2, 2)).tolist()
        [[0.5, 0.5], [0.5, 0.5]]
    """

    #: Elements are i.i.d.: the engine may draw them in chunks (see `law`).
    elementwise: ClassVar[bool] = False
    #: Part of the library: validated by `check` before any write.
    builtin: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass written outside the library is user code: its values are drawn
        # and validated before any write, and a `sample` it overrides is what runs
        # (never the built-in element-wise fast path it would otherwise inherit).
        if not cls.__module__.startswith("unified_params."):
            cls.builtin = False
            if "sample" in cls.__dict__:
                cls.elementwise = False

    def check(self, param: Param) -> None:
        """Raise `InitError` if this initializer cannot fill ``param``."""

    def resolve(self, param: Param) -> Initializer:
        """The initializer that actually fills ``param`` (``Default`` picks one)."""
        return self

    def law(self, param: Param | None) -> Law:
        """The element-wise distribution for ``param`` (elementwise initializers;
        ``None`` when drawn without a parameter, for laws that need none)."""
        raise NotImplementedError

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, param: Param | None) -> np.ndarray:
        """Values of canonical ``shape``. Elementwise initializers need not override it."""
        if not self.elementwise:
            raise NotImplementedError(f"{type(self).__name__} must override sample(shape, rng, param)")
        return self.law(param).draw(math.prod(shape), rng, np.float32).reshape(shape)

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator | None = None, param: Any = None):
        """Draw an array directly (for trying an initializer out)."""
        return self.sample(tuple(shape), rng or np.random.default_rng(), param)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items(), key=str))))


class _Elementwise(Initializer):
    elementwise = True
    builtin = True


def _number(
    owner: str, name: str, value: Any, *, minimum: float | None = None, strict: bool = False
) -> float:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok and math.isfinite(value) and (minimum is None or (value > minimum if strict else value >= minimum)):
        return float(value)
    need = "a finite number" if minimum is None else f"a finite number {'>' if strict else '>='} {minimum}"
    raise InitError(f"{owner}: invalid {name}. Expected {need}. " + received(**{name: value}))


class Zeros(_Elementwise):
    """All zeros.

    Examples:
        >>> Zeros()((2,)).tolist()
        [0.0, 0.0]
    """

    def law(self, param: Param | None) -> Law:
        return Law("constant", 0.0)


class Ones(_Elementwise):
    """All ones.

    Examples:
        >>> Ones()((2,)).tolist()
        [1.0, 1.0]
    """

    def law(self, param: Param | None) -> Law:
        return Law("constant", 1.0)


class Constant(_Elementwise):
    """Every element set to ``value``.

    Examples:
        >>> Constant(42)((1, 2)).tolist()
        [[42.0, 42.0]]
    """

    def __init__(self, value: float):
        self.value = _number("Constant", "value", value)

    def law(self, param: Param | None) -> Law:
        return Law("constant", self.value)


class Normal(_Elementwise):
    """Normal distribution ``N(mean, std**2)``.

    Examples:
        >>> Normal(0.0, 0.01)((1000,), np.random.default_rng(0)).std().round(2)
        np.float32(0.01)
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        self.mean = _number("Normal", "mean", mean)
        self.std = _number("Normal", "std", std, minimum=0.0)

    def law(self, param: Param | None) -> Law:
        return Law("normal", self.mean, self.std)


class Uniform(_Elementwise):
    """Uniform distribution on ``[low, high)``.

    Examples:
        >>> x = Uniform(5, 10)((100,), np.random.default_rng(0))
        >>> bool(x.min() >= 5 and x.max() < 10)
        True
    """

    def __init__(self, low: float = 0.0, high: float = 1.0):
        self.low = _number("Uniform", "low", low)
        self.high = _number("Uniform", "high", high)
        if self.low > self.high:
            raise InitError(
                "Uniform: low exceeds high. Expected low <= high. " + received(low=low, high=high)
            )

    def law(self, param: Param | None) -> Law:
        return Law("uniform", self.low, self.high)


class TruncatedNormal(_Elementwise):
    """Normal ``N(mean, std**2)`` redrawn outside the absolute bounds ``[a, b]`` (torch's meaning).

    Examples:
        >>> x = TruncatedNormal(0, 1, -2, 2)((1000,), np.random.default_rng(0))
        >>> bool(x.min() >= -2 and x.max() <= 2)
        True
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0):
        self.mean = _number("TruncatedNormal", "mean", mean)
        self.std = _number("TruncatedNormal", "std", std, minimum=0.0, strict=True)
        self.a = _number("TruncatedNormal", "a", a)
        self.b = _number("TruncatedNormal", "b", b)
        if self.a >= self.b:
            raise InitError("TruncatedNormal: a is not below b. Expected a < b. " + received(a=a, b=b))
        mass = _normal_cdf((self.b - self.mean) / self.std) - _normal_cdf((self.a - self.mean) / self.std)
        if mass < 1e-3:
            raise InitError(
                "TruncatedNormal: [a, b] holds less than 0.1% of the distribution, too far in the "
                "tail to sample. Expected bounds near the mean. " + received(mean=mean, std=std, a=a, b=b)
            )

    def law(self, param: Param | None) -> Law:
        return Law("truncnormal", self.mean, self.std, self.a, self.b)


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


#: How a fan-based initializer counts fans: torch's rule on the canonical shape;
#: a channels-last framework's rule on its own kernel (`channels_last_fans`:
#: Keras' depthwise kernels); or, for a grouped convolution, fan in over every
#: input channel rather than one group's (paddle's convolutions).
FAN_RULES = ("canonical", "channels_last", "all_inputs")


class _FanBased(_Elementwise):
    """Initializers whose scale comes from the parameter's fans."""

    _fans_rule = "canonical"

    def counted(self, rule: str) -> _FanBased:
        """This initializer with fans counted by ``rule`` (one of `FAN_RULES`),
        as a framework's own default counts them.

        Examples:
            >>> XavierUniform().counted("channels_last") == XavierUniform()
            False
        """
        if rule not in FAN_RULES:
            raise InitError(f"Unknown fan rule. Expected one of {FAN_RULES}. " + received(rule=rule))
        out = copy.copy(self)
        out._fans_rule = rule
        return out

    def check(self, param: Param) -> None:
        self._fans(param)

    def _fans(self, param: Param | None) -> tuple[int, int]:
        if param is None:
            raise InitError(f"{type(self).__name__} needs a parameter to compute its fans.")
        if self._fans_rule == "channels_last":
            return channels_last_fans(param.native_shape, path=param.path)
        fan_in, fan_out = fans(param.shape, path=param.path)
        if self._fans_rule == "all_inputs":
            fan_in *= int(param.adapter.hyperparameters(param.module.native).get("groups", 1))
        return fan_in, fan_out


class XavierUniform(_FanBased):
    """Glorot uniform: ``U(-b, b)``, ``b = gain * sqrt(6 / (fan_in + fan_out))``."""

    def __init__(self, gain: float = 1.0):
        self.gain = _number("XavierUniform", "gain", gain, minimum=0.0)

    def law(self, param: Param | None) -> Law:
        fan_in, fan_out = self._fans(param)
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return Law("uniform", -bound, bound)


class XavierNormal(_FanBased):
    """Glorot normal: ``N(0, std**2)``, ``std = gain * sqrt(2 / (fan_in + fan_out))``."""

    def __init__(self, gain: float = 1.0):
        self.gain = _number("XavierNormal", "gain", gain, minimum=0.0)

    def law(self, param: Param | None) -> Law:
        fan_in, fan_out = self._fans(param)
        return Law("normal", 0.0, self.gain * math.sqrt(2.0 / (fan_in + fan_out)))


class _Kaiming(_FanBased):
    def __init__(self, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
        name = type(self).__name__
        self.a = _number(name, "a", a)
        if mode not in ("fan_in", "fan_out"):
            raise InitError(f"{name}: unknown mode. Expected 'fan_in' or 'fan_out'. " + received(mode=mode))
        if nonlinearity not in NONLINEARITIES:
            raise InitError(
                f"{name}: unknown nonlinearity {nonlinearity!r}. Expected one of {NONLINEARITIES}. "
                + received(nonlinearity=nonlinearity)
            )
        self.mode = mode
        self.nonlinearity = nonlinearity

    def _std(self, param: Param | None) -> float:
        fan_in, fan_out = self._fans(param)
        fan = fan_in if self.mode == "fan_in" else fan_out
        return calculate_gain(self.nonlinearity, self.a) / math.sqrt(fan)


class KaimingUniform(_Kaiming):
    """He uniform: ``U(-b, b)``, ``b = gain * sqrt(3 / fan)`` (torch's defaults)."""

    def law(self, param: Param | None) -> Law:
        bound = math.sqrt(3.0) * self._std(param)
        return Law("uniform", -bound, bound)


class KaimingNormal(_Kaiming):
    """He normal: ``N(0, std**2)``, ``std = gain / sqrt(fan)`` (torch's defaults)."""

    def law(self, param: Param | None) -> Law:
        return Law("normal", 0.0, self._std(param))


class LecunNormal(_FanBased):
    """LeCun normal as Keras defines it: truncated at two standard deviations,
    rescaled so the standard deviation is ``sqrt(1 / fan_in)``."""

    def law(self, param: Param | None) -> Law:
        std = math.sqrt(1.0 / self._fans(param)[0]) / 0.87962566103423978
        return Law("truncnormal", 0.0, std, -2 * std, 2 * std)


class LecunUniform(_FanBased):
    """LeCun uniform: ``U(-b, b)``, ``b = sqrt(3 / fan_in)``."""

    def law(self, param: Param | None) -> Law:
        bound = math.sqrt(3.0 / self._fans(param)[0])
        return Law("uniform", -bound, bound)


class Orthogonal(Initializer):
    """A (semi-)orthogonal matrix over the flattened trailing axes, times ``gain``."""

    builtin = True

    def __init__(self, gain: float = 1.0):
        self.gain = _number("Orthogonal", "gain", gain)

    def check(self, param: Param) -> None:
        _need_rank(self, param, lambda r: r >= 2, "at least 2 axes")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, param: Param | None) -> np.ndarray:
        rows, cols = shape[0], math.prod(shape[1:])
        flat = rng.standard_normal((rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape)


class Dirac(Initializer):
    """Identity-preserving convolution kernels (out, in, *kernel), per group."""

    builtin = True

    def __init__(self, groups: int = 1):
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise InitError("Dirac: invalid groups. Expected an integer >= 1. " + received(groups=groups))
        self.groups = groups

    def check(self, param: Param) -> None:
        _need_rank(self, param, lambda r: 3 <= r <= 5, "3 to 5 axes (a conv kernel)")
        if param.shape[0] % self.groups:
            raise InitError(
                f"Dirac: {param.path!r} has {param.shape[0]} output channels. Expected a "
                f"multiple of groups={self.groups}. " + received(groups=self.groups)
            )

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, param: Param | None) -> np.ndarray:
        out = np.zeros(shape)
        per_group = shape[0] // self.groups
        centre = tuple(k // 2 for k in shape[2:])
        for g in range(self.groups):
            for d in range(min(per_group, shape[1])):
                out[(g * per_group + d, d, *centre)] = 1.0
        return out


class Eye(Initializer):
    """The identity matrix (ones on the diagonal of a 2-D weight)."""

    builtin = True

    def check(self, param: Param) -> None:
        _need_rank(self, param, lambda r: r == 2, "exactly 2 axes")

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, param: Param | None) -> np.ndarray:
        rows, columns = shape
        return np.eye(rows, columns)


class FanInUniform(_Elementwise):
    """``U(-b, b)`` with ``b = scale / sqrt(fan_in of the layer's weight)``.

    PyTorch's default for Linear and Conv weights and biases.
    """

    def __init__(self, scale: float = 1.0):
        self.scale = _number("FanInUniform", "scale", scale, minimum=0.0)

    def check(self, param: Param) -> None:
        fans(_sibling(param, "weight").shape, path=param.path)

    def law(self, param: Param | None) -> Law:
        bound = self.scale / math.sqrt(fans(_sibling(param, "weight").shape)[0])
        return Law("uniform", -bound, bound)


class RecurrentUniform(_Elementwise):
    """``U(-b, b)`` with ``b = 1 / sqrt(hidden_size)``: the torch and Paddle default for RNN/LSTM/GRU."""

    def check(self, param: Param) -> None:
        _hidden(param)

    def law(self, param: Param | None) -> Law:
        bound = 1.0 / math.sqrt(_hidden(param))
        return Law("uniform", -bound, bound)


class UnitForgetBias(Initializer):
    """Zeros, with ones on the LSTM forget gate (Keras' ``unit_forget_bias``)."""

    builtin = True

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, param: Param | None) -> np.ndarray:
        out = np.zeros(shape)
        hidden = shape[-1] // 4
        out[..., hidden : 2 * hidden] = 1.0  # gates i, f, g, o: the second block
        return out


class Default(Initializer):
    """Whatever the model's framework uses by default for that layer and leaf.

    torch Linear: ``U(±1/sqrt(fan_in))`` weights and biases; Keras Dense:
    Glorot uniform kernel, zero bias; Paddle Linear: Xavier uniform, zero bias;
    and so on per layer kind, as each adapter declares.
    """

    builtin = True

    def resolve(self, param: Param) -> Initializer:
        table = param.adapter.default_init(param.module.native, param.layer_kind)
        chosen = table.get(base_name(param.name))
        if chosen is None:
            kinds = ", ".join(sorted(param.adapter.DEFAULT_INIT))
            raise InitError(
                f"Default: no {param.backend} default is known for {param.path!r} "
                f"({param.layer_kind} leaf {param.name!r}). Expected a parameter of a layer kind "
                f"with a declared default ({kinds}). " + received(path=param.path)
            )
        return chosen


class FunctionInitializer(Initializer):
    """A plain function used as an initializer: ``(shape, rng) -> array``, or
    ``(shape, rng, param) -> array`` to read the parameter being filled (its
    ``path``, ``name``, ``shape``, ``layer_kind``), as the chapter's
    ``my_init`` prints ``Init weight (8, 4)``.

    Values are in canonical layout; ``rng`` is a ``numpy.random.Generator``.

    Examples:
        >>> def my_init(shape, rng):
        ...     w = rng.uniform(-10, 10, shape)
        ...     return w * (np.abs(w) >= 5)
        >>> FunctionInitializer(my_init)
        FunctionInitializer(my_init)
        >>> def loud(shape, rng, param):
        ...     print("Init", param.name, param.shape)
        ...     return np.zeros(shape)
        >>> FunctionInitializer(loud).takes_param
        True
    """

    def __init__(self, function: Any):
        self._function = function
        #: Whether the function takes the parameter as a third argument.
        self.takes_param = _positional_arity(function) >= 3

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator, param: Param | None) -> np.ndarray:
        if self.takes_param:
            return self._function(shape, rng, param)
        return self._function(shape, rng)

    def __repr__(self) -> str:
        return f"FunctionInitializer({getattr(self._function, '__name__', repr(self._function))})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._function is self._function

    def __hash__(self) -> int:
        return hash((type(self), id(self._function)))


def _positional_arity(function: Any) -> int:
    """How many positional arguments a function takes (a large number for ``*args``)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: the two-argument form
        return 2
    kinds = [p.kind for p in parameters]
    if inspect.Parameter.VAR_POSITIONAL in kinds:
        return 1 << 10
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(kind in positional for kind in kinds)


def as_initializer(value: Any) -> Initializer:
    """An [Initializer][unified_params.init.Initializer] from an instance, a class or a function.

    Raises:
        InitError: Anything else.

    Examples:
        >>> as_initializer(Zeros)
        Zeros()
    """
    if isinstance(value, Initializer):
        return value
    if isinstance(value, type) and issubclass(value, Initializer):
        return value()
    if callable(value):
        return FunctionInitializer(value)
    raise InitError(
        "Cannot use this as an initializer. Expected an up.init.Initializer, an Initializer "
        "class, or a function (shape, rng) -> array or (shape, rng, param) -> array. "
        + received(init=value, type=type(value).__name__)
    )


def _need_rank(init: Initializer, param: Param, ok: Any, need: str) -> None:
    rank = len(param.shape)
    if not ok(rank):
        raise InitError(
            f"{type(init).__name__} cannot initialise {param.path!r}: it has {rank} axes. "
            f"Expected {need}. " + received(path=param.path, shape=param.shape)
        )


def _sibling(param: Param | None, leaf: str) -> Param:
    if param is None:
        raise InitError("This initializer needs a parameter of a layer.")
    for other in param.module.params().values():
        if base_name(other.name) == leaf and other.module.path == param.module.path:
            return other
    raise InitError(
        f"{param.path!r} has no sibling {leaf!r} to read a fan from. " + received(path=param.path)
    )


def _hidden(param: Param | None) -> int:
    if param is None or param.layer_kind not in RECURRENT:
        raise InitError("RecurrentUniform initialises recurrent layers' parameters only (RNN, LSTM, GRU).")
    return _sibling(param, "weight_hh").shape[1]
