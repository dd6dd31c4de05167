"""The one list of backends: what each is, how to find its models, what it can do.

Everything that needs to know the backends reads this module: detection
(`backend_of`), the safe import order (`unified_params.backends.importing`),
the command line's choices, the docs generator, the spec builders and the
test suite's parametrisation. The core never compares backend names; it asks
an adapter's `Capabilities`.

Detection never imports a framework: a model can only belong to a framework
that is already in ``sys.modules``. The answer is cached by the model's type,
under a lock, so detection costs one dict look-up after the first call.

A framework that runs on several engines (Keras 3 on TensorFlow, JAX or
torch, chosen by ``KERAS_BACKEND`` before the first import) has one backend
entry and one *target* per engine: ``keras`` (its default engine),
``keras-jax``, ``keras-torch``. One process holds one engine of a framework.

Examples:
    >>> [b.name for b in detection_order()]
    ['keras', 'torch', 'paddle', 'flax']
    >>> targets()
    ('torch', 'keras', 'keras-jax', 'keras-torch', 'paddle', 'flax')
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .._core.errors import BackendNotInstalledError, UnsupportedError, received

if TYPE_CHECKING:
    from .._core.layouts import Leaf
    from ._base import Adapter


@dataclass(frozen=True)
class Capabilities:
    """What a backend's variables and layers allow; the core asks these, never a name.

    Examples:
        >>> Capabilities().channels_last
        False
    """

    #: Image inputs go channels-last (``NHWC``) rather than channels-first.
    channels_last: bool = False
    #: ``Adapter.view`` shares the variable's memory (no copy on read).
    zero_copy_views: bool = True
    #: ``Adapter.fill_in_place`` writes straight into the variable's memory.
    in_place_fill: bool = True
    #: A slice write touches only the slice; else it is a read-modify-write of
    #: the whole variable (still in place for the variable's identity).
    in_place_slices: bool = True
    #: ``Adapter.assign(owned=True)`` may keep the array as the variable's memory
    #: instead of copying it (a load hands over the tensors it read); where it
    #: cannot, a large value is written through ``Adapter.fill_in_place``.
    keeps_owned_values: bool = True
    #: A single parameter of a recurrent layer can be tied to another one
    #: (paddle's fused RNN kernel keeps its own flat copy of the weights).
    rnn_param_ties: bool = True
    #: A model lists its layers in the order it calls them, so the first listed
    #: takes the input (Flax NNX lists a module's attributes by name).
    call_order: bool = True


@dataclass(frozen=True)
class Backend:
    """One framework the library manages.

    Examples:
        >>> get("paddle").extra
        'paddle'
    """

    #: The name models report (``model.backend``) and users pass.
    name: str
    #: Top-level module of the framework; a model is one of its models only if
    #: this module is imported already.
    module: str
    #: Attribute path, inside `module`, of the class every layer derives from.
    layer_base: str
    #: How users name that class, for messages.
    layer_name: str
    #: The pip extra that installs the framework: ``pip install 'unified-params[extra]'``.
    extra: str
    #: The adapter module; it defines ``ADAPTER`` and ``SPEC`` (an
    #: `unified_params.backends._base.SpecBuilder`).
    adapter: str
    #: Lower imports first: paddle before tensorflow (the reverse order segfaults).
    import_priority: int
    #: Lower is tried first: Keras before torch (Keras-on-torch layers are torch modules).
    detect_priority: int
    #: What the backend's variables allow, on its default engine.
    capabilities: Capabilities = Capabilities()
    #: Engines the framework runs on, its default first; empty for one engine.
    engines: tuple[str, ...] = ()
    #: The environment variable that picks the engine before the first import.
    engine_variable: str = ""
    #: Attribute path, inside `module`, of a function that names the engine in use.
    engine_probe: str = ""
    #: Capabilities that differ on an engine other than the default.
    engine_capabilities: Mapping[str, Capabilities] = field(default_factory=dict)
    #: Modules an engine imports (Keras on JAX imports jax).
    engine_modules: Mapping[str, str] = field(default_factory=dict)
    #: The pip extra of an engine other than the default.
    engine_extras: Mapping[str, str] = field(default_factory=dict)
    #: Checkpoint formats the adapter package converts to and from safetensors:
    #: format name -> module defining ``FORMAT`` (an `unified_params._core.formats.Format`).
    formats: Mapping[str, str] = field(default_factory=dict)
    #: Top-level modules of the tensor and variable types a user takes from this
    #: backend's models: a value of such a type may be in the backend's own
    #: layout (`value_backends`). Not a general array library's (a bare
    #: ``jax.Array``, like a numpy array, holds whatever layout it was given).
    value_modules: tuple[str, ...] = ()
    #: What a safetensors file's metadata names as its ``format`` when this
    #: framework wrote it (torch: ``"pt"``, as Hugging Face and timm write it):
    #: its values are laid out as the framework keeps them (`writers_of`).
    file_formats: tuple[str, ...] = ()
    #: The module of the adapter's layout tables (``LEAVES``: per layer kind,
    #: native name -> `Leaf`), importable without the framework; empty: its
    #: layouts are all canonical (torch's).
    leaves: str = ""

    def install_hint(self) -> str:
        """What to install for this backend on the engine this process runs.

        Examples:
            >>> get("torch").install_hint()
            "pip install 'unified-params[torch]'"
        """
        extra = self.engine_extras.get(engine(self.name) or "", self.extra)
        return f"pip install 'unified-params[{extra}]'"


BACKENDS: dict[str, Backend] = {}
_by_type: dict[type, str] = {}
_adapters: dict[str, Adapter] = {}
_values_by_type: dict[type, tuple[str, ...]] = {}
_lock = threading.RLock()


def register(backend: Backend) -> Backend:
    """Add a backend (or replace one of the same name); every reader sees it at once.

    Examples:
        >>> spare = register(replace(get("torch"), name="spare", detect_priority=99))
        >>> "spare" in names()
        True
        >>> unregister("spare")
    """
    with _lock:
        BACKENDS[backend.name] = backend
        _by_type.clear()  # a cached detection may now have a better answer
        _values_by_type.clear()
    return backend


def unregister(name: str) -> None:
    """Remove a backend added with `register` (for tests of the registry itself).

    Examples:
        >>> unregister("no-such-backend")  # nothing to remove: no error
    """
    with _lock:
        BACKENDS.pop(name, None)
        _adapters.pop(name, None)
        _by_type.clear()
        _values_by_type.clear()


def names() -> tuple[str, ...]:
    """Every backend's name, in the order they were registered.

    Examples:
        >>> names()
        ('torch', 'keras', 'paddle', 'flax')
    """
    return tuple(BACKENDS)


def get(name: str) -> Backend:
    """A backend's entry by name.

    Raises:
        ValueError: No backend has that name.

    Examples:
        >>> get("keras").engines
        ('tensorflow', 'jax', 'torch')
    """
    found = BACKENDS.get(name)
    if found is None:
        raise ValueError(f"Unknown backend {name!r}. Expected one of {names()}. " + received(backend=name))
    return found


def import_order() -> tuple[str, ...]:
    """Backend names in the order their frameworks may be imported.

    Examples:
        >>> import_order()
        ('paddle', 'torch', 'keras', 'flax')
    """
    return tuple(b.name for b in sorted(BACKENDS.values(), key=lambda b: b.import_priority))


def detection_order() -> list[Backend]:
    """Backends in the order detection tries them.

    Examples:
        >>> detection_order()[0].name
        'keras'
    """
    return sorted(BACKENDS.values(), key=lambda b: b.detect_priority)


def targets() -> tuple[str, ...]:
    """What a test run or a command can name: each backend, and ``name-engine``
    for each engine but the default (``keras-jax``).

    Examples:
        >>> "keras-jax" in targets()
        True
    """
    out: list[str] = []
    for b in BACKENDS.values():
        out.append(b.name)
        out += [f"{b.name}-{engine}" for engine in b.engines[1:]]
    return tuple(out)


def split_target(target: str) -> tuple[str, str | None]:
    """``"keras-jax"`` -> ``("keras", "jax")``; ``"torch"`` -> ``("torch", None)``.

    Examples:
        >>> split_target("keras-torch"), split_target("keras")
        (('keras', 'torch'), ('keras', 'tensorflow'))

    Raises:
        ValueError: Not a target of any backend.
    """
    name, _, engine = target.partition("-")
    backend = BACKENDS.get(name)
    if backend is None or (engine and engine not in backend.engines[1:]):
        raise ValueError(
            f"Unknown backend {target!r}. Expected one of {targets()}. " + received(backend=target)
        )
    return name, engine or (backend.engines[0] if backend.engines else None)


def engine(name: str) -> str | None:
    """The engine a backend runs on in this process: the imported one, else
    the one its environment variable picks, else its default.

    Examples:
        >>> engine("torch") is None  # one engine only
        True
    """
    backend = get(name)
    if not backend.engines:
        return None
    module = sys.modules.get(backend.module)
    if module is not None and backend.engine_probe:
        try:
            return str(_attribute(module, backend.engine_probe)())
        except AttributeError:
            pass  # partly imported
    return os.environ.get(backend.engine_variable) or backend.engines[0]


def capabilities(name: str) -> Capabilities:
    """A backend's capabilities on the engine this process runs it on.

    Examples:
        >>> capabilities("torch").in_place_slices
        True
    """
    backend = get(name)
    current = engine(name)
    return backend.engine_capabilities.get(current or "", backend.capabilities)


def use_target(target: str) -> str:
    """Prepare this process for a target before its framework is imported
    (``keras-jax`` sets ``KERAS_BACKEND=jax``); the backend's name.

    Raises:
        UnsupportedError: The framework is already imported on another engine.

    Examples:
        >>> use_target("torch")
        'torch'
    """
    name, wanted = split_target(target)
    backend = get(name)
    if wanted is None:
        return name
    if backend.module in sys.modules:
        current = engine(name)
        if current != wanted:
            raise UnsupportedError(
                f"{target} needs {backend.module} on {wanted}, but this process imported it on "
                f"{current}: a framework picks its engine once, at import. Expected one process per "
                f"engine (set {backend.engine_variable}={wanted} before the import). "
                + received(target=target, engine=current)
            )
        return name
    os.environ[backend.engine_variable] = wanted
    return name


def installed(target: str) -> bool:
    """Whether a backend's framework (and the engine a target names, or the one
    this process would use) can be imported, without importing it.

    Examples:
        >>> installed("no-such-backend")
        False
    """
    try:
        return all(module_available(m) for m in modules_loaded(target))
    except ValueError:
        return False


def modules_loaded(target: str) -> tuple[str, ...]:
    """The top-level modules importing a backend loads: its framework's, and
    its engine's (the one a target names, or the one this process would use).

    Raises:
        ValueError: No backend of that name is registered.

    Examples:
        >>> modules_loaded("torch")
        ('torch',)
        >>> modules_loaded("keras-jax")
        ('keras', 'jax')
    """
    name, wanted = split_target(target)
    backend = BACKENDS[name]
    current = (wanted if "-" in target else engine(name)) or ""
    engine_module = backend.engine_modules.get(current)
    return (backend.module, engine_module) if engine_module else (backend.module,)


def module_available(module: str) -> bool:
    """Whether a module is imported or can be, without importing it.

    Examples:
        >>> module_available("numpy"), module_available("no_such_module")
        (True, False)
    """
    return module in sys.modules or importlib.util.find_spec(module) is not None


def backend_of(model: Any) -> str:
    """The backend name of a native model, without importing any framework.

    Raises:
        UnsupportedError: The object is not a model of a supported framework.

    Examples:
        >>> import torch
        >>> backend_of(torch.nn.Linear(2, 3))
        'torch'
    """
    cls = type(model)
    name = _by_type.get(cls)
    if name is None:
        name = _detect(cls)
        with _lock:
            _by_type[cls] = name
    return name


def value_backends(value: Any) -> tuple[str, ...]:
    """The backends a value's type belongs to (`Backend.value_modules`): its
    layout may be theirs. Never imports.

    Examples:
        >>> import numpy as np, paddle
        >>> value_backends(paddle.zeros([2])), value_backends(np.zeros(2))
        (('paddle',), ())
    """
    cls = type(value)
    found = _values_by_type.get(cls)
    if found is None:
        top = cls.__module__.partition(".")[0]
        found = tuple(b.name for b in BACKENDS.values() if top in b.value_modules)
        with _lock:
            _values_by_type[cls] = found
    return found


def writers_of(file_format: str | None) -> tuple[str, ...]:
    """The backends whose safetensors files name ``file_format`` as their
    ``format`` (`Backend.file_formats`); a file that names none is taken as
    the first such backend's, the format's first and most common writer.

    Examples:
        >>> writers_of("pt"), writers_of(None), writers_of("np")
        (('torch',), ('torch',), ())
    """
    found = tuple(b.name for b in BACKENDS.values() if b.file_formats)
    if file_format is None:
        return found[:1]
    return tuple(name for name in found if file_format in BACKENDS[name].file_formats)


def laid_out() -> tuple[str, ...]:
    """The backends that declare layouts of their own (`Backend.leaves`).

    Examples:
        >>> laid_out()
        ('keras', 'paddle', 'flax')
    """
    return tuple(b.name for b in BACKENDS.values() if b.leaves)


def declared_leaves(name: str) -> Mapping[str, Mapping[str, Leaf]]:
    """A backend's layout tables (`Backend.leaves`), without importing its
    framework: per layer kind, native variable name -> `Leaf`.

    Examples:
        >>> declared_leaves("paddle")["linear"]["weight"].axes
        ('in', 'out')
        >>> declared_leaves("torch")
        {}
    """
    module = get(name).leaves
    return importlib.import_module(module).LEAVES if module else {}


def adapter_for(model: Any) -> Adapter:
    """The adapter of the framework a native model belongs to.

    Examples:
        >>> import torch
        >>> adapter_for(torch.nn.Linear(2, 3)).name
        'torch'
    """
    return get_adapter(backend_of(model))


def get_adapter(name: str) -> Adapter:
    """The adapter of a backend by name, importing its framework if needed.

    Raises:
        BackendNotInstalledError: The framework is not installed.
        ValueError: The name is not a backend.

    Examples:
        >>> get_adapter("torch").capabilities.in_place_slices
        True
    """
    adapter = _adapters.get(name)
    if adapter is not None:
        return adapter
    backend = get(name)
    from .importing import import_framework

    import_framework(name)  # paddle before tensorflow, or a clear refusal
    module = _import_adapter(backend)
    with _lock:
        adapter = _adapters.setdefault(name, module.ADAPTER)
    return adapter


def checkpoint_formats() -> dict[str, tuple[str, Any]]:
    """Every checkpoint format of an installed backend: format name -> (backend,
    format), importing those frameworks.

    Examples:
        >>> sorted(checkpoint_formats())
        ['dcp']
    """
    found: dict[str, tuple[str, Any]] = {}
    for backend in BACKENDS.values():
        if not backend.formats or not installed(backend.name):
            continue
        get_adapter(backend.name)  # the framework, imported in a safe order
        for name, module in backend.formats.items():
            found[name] = (backend.name, importlib.import_module(module).FORMAT)
    return found


def spec_builder(name: str) -> Any:
    """The `unified_params.backends._base.SpecBuilder` of a backend, importing its framework.

    Examples:
        >>> type(spec_builder("torch")).__name__
        'TorchSpec'
    """
    get_adapter(name)
    return _import_adapter(get(name)).SPEC


def _import_adapter(backend: Backend) -> Any:
    try:
        return importlib.import_module(backend.adapter)
    except ImportError as err:
        raise BackendNotInstalledError(
            f"The {backend.name} backend needs its framework, which could not be imported ({err}). "
            f"Install it with: {backend.install_hint()}. " + received(backend=backend.name)
        ) from err


def _attribute(module: Any, path: str) -> Any:
    for attr in path.split("."):
        module = getattr(module, attr)
    return module


def _detect(cls: type) -> str:
    for backend in detection_order():
        framework = sys.modules.get(backend.module)
        if framework is None:
            continue
        try:
            base = _attribute(framework, backend.layer_base)
        except AttributeError:  # a partly imported framework cannot own this object
            continue
        if isinstance(base, type) and issubclass(cls, base):
            return backend.name
    supported = "; ".join(b.layer_name for b in BACKENDS.values())
    raise UnsupportedError(
        f"Cannot manage parameters of a {cls.__module__}.{cls.__qualname__}: it is not a "
        f"model of a supported framework. Expected a subclass of one of: {supported}. "
        + received(type=cls.__qualname__)
    )


_COPYING = Capabilities(zero_copy_views=True, in_place_fill=False, in_place_slices=False)
register(
    Backend(
        name="torch",
        module="torch",
        layer_base="nn.Module",
        layer_name="torch.nn.Module",
        extra="torch",
        adapter="unified_params.backends.torch",
        import_priority=1,
        detect_priority=1,
        formats={"dcp": "unified_params.backends.torch.dcp"},
        value_modules=("torch",),
        file_formats=("pt", "torch"),
    )
)
register(
    Backend(
        name="keras",
        module="keras",
        layer_base="layers.Layer",
        layer_name="keras.layers.Layer (Keras 3)",
        extra="tensorflow",
        adapter="unified_params.backends.keras",
        import_priority=2,
        detect_priority=0,
        capabilities=replace(_COPYING, channels_last=True),
        engines=("tensorflow", "jax", "torch"),
        engine_variable="KERAS_BACKEND",
        engine_probe="backend.backend",
        # On JAX, as on TensorFlow, numpy reads the variable's buffer but every write
        # makes a new one; on torch a variable is a Parameter written in place.
        engine_capabilities={"torch": Capabilities(channels_last=True)},
        engine_modules={"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"},
        engine_extras={"jax": "jax", "torch": "torch"},
        # Its variables, and TensorFlow's tensors (Keras' first engine, its layouts).
        value_modules=("keras", "tensorflow"),
        leaves="unified_params.backends.keras.leaves",
    )
)
register(
    Backend(
        name="paddle",
        module="paddle",
        layer_base="nn.Layer",
        layer_name="paddle.nn.Layer",
        extra="paddle",
        adapter="unified_params.backends.paddle",
        import_priority=0,
        detect_priority=2,
        # set_value copies: a value is written into the variable's own memory instead.
        capabilities=Capabilities(in_place_slices=False, rnn_param_ties=False, keeps_owned_values=False),
        value_modules=("paddle",),
        leaves="unified_params.backends.paddle.leaves",
    )
)
register(
    Backend(
        name="flax",
        module="flax",
        layer_base="nnx.Module",
        layer_name="flax.nnx.Module (Flax NNX)",
        extra="flax",
        adapter="unified_params.backends.flax",
        import_priority=3,
        detect_priority=3,
        # A variable holds an immutable jax.Array: numpy reads its buffer, a write puts a new one.
        # A module's attributes are listed by name, as nnx.state sorts them.
        capabilities=replace(_COPYING, channels_last=True, call_order=False),
        value_modules=("flax",),  # its Variables (nnx.Param); a bare jax.Array is any layout
        leaves="unified_params.backends.flax.leaves",
    )
)
