"""State, checkpoints and porting: `state_dict`, [load_state_dict][unified_params.load_state_dict],
`save`, `load`, [port][unified_params.port], [convert][unified_params.convert]."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._core import checkpoint as _checkpoint
from ._core import port as _port
from ._core import state as _state
from ._core.errors import CheckpointError, received
from ._core.formats import ConvertReport
from ._core.port import PortReport
from ._core.rules import Renaming
from ._core.state import LoadReport
from ._core.view import Param, check_layout
from .access import wrap

__all__ = [
    "ConvertReport",
    "LoadReport",
    "PortReport",
    "convert",
    "load",
    "load_state_dict",
    "port",
    "save",
    "state_dict",
]


def state_dict(model: Any, layout: str = "canonical") -> dict[str, np.ndarray]:
    """The model's parameters and buffers as numpy arrays, one entry per tie group
    (the dict's ``aliases`` maps each other path of a group to its key, so a
    load fills them in a model where they are not tied, as a file's metadata does).

    With ``layout="canonical"`` the names and layouts are PyTorch's, the same
    on every backend for a model built from the same spec (a Keras LSTM's one
    bias is split into ``bias_ih_l0`` and a zero ``bias_hh_l0``). A leaf the
    library knows no canonical form of (`Param.own_layout`) keeps its
    framework's; the dict's ``own_layout`` names those keys, so a load
    accepts them only into a model of the same framework. With
    ``layout="native"`` every value is in the framework's own layout; the
    dict says so (``layout``), and a load takes it only into a model of
    that framework (torch's, canonical already, into any).

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> sorted(up.state_dict(torch.nn.Linear(4, 2)))
        ['bias', 'weight']
    """
    return _state.state_dict(wrap(model), layout)


def load_state_dict(
    model: Any,
    state: Mapping[str, Any],
    *,
    layout: str | None = None,
    strict: bool = True,
    allow_nonfinite: bool = False,
    mapping: Mapping[str, str] | Sequence[tuple[str, str | None]] | None = None,
) -> LoadReport:
    """Load a canonical state (numpy arrays or tensors of any framework) in place.

    Every key, shape and dtype is checked, and every value read and checked,
    before the first write: with ``strict=True`` any missing, unexpected or
    mismatched key, a value that is NaN or infinite once cast to its
    parameter's dtype, or a tie group given two different values raises and
    the model is unchanged; with ``strict=False`` what fits is loaded and the
    rest reported. Aliases of a tie group that agree and framework-only
    leaves (``num_batches_tracked``) are never errors. On a sub-view, keys
    are relative to it (``up.load_state_dict(m[2], {"weight": ..., "bias": ...})``).
    A dict from ``up.state_dict`` says what a file's metadata says (its
    backend, its leaves in a framework's own layout, its Linears kept in
    their framework's order of a flattened map), and is checked as a file is.

    A tensor of a framework that keeps a leaf in a layout of its own, which
    fits the same shape (a paddle tensor for a square Linear's weight, a
    Keras variable for an LSTM's gates), may be that framework's own state,
    such as a paddle model's ``state_dict()``: unless ``layout`` is given, it
    is refused (`LoadReport.ambiguous`), never guessed. A value keyed at a
    wrapper's hold on its inner layer's kernel (Keras'
    ``SpectralNormalization``'s ``"0.kernel"``, listed at ``"0.layer.weight"``)
    is canonical, as a look-up there answers, unless only the framework's own
    layout fits its shape (files written before keyed it there so); a square
    one fits both and raises `CheckpointError` unless ``layout`` is given.

    Args:
        model: A native model or a view.
        state: Path -> array, tensor or Param (a Param is read in its canonical layout).
        layout: ``"canonical"`` (PyTorch's names and layouts), ``"native"``
            (each value in the framework's own layout, keyed by canonical
            paths or the framework's own leaf names, as paddle's
            ``state_dict()`` keys ``"1._mean"``; ``strict`` means the
            same), or ``None`` (the default): canonical, refusing a
            framework's tensor whose own layout fits too (say
            ``"canonical"`` to load it as it is).
        strict: Refuse (and write nothing) unless the state fits exactly.
        allow_nonfinite: Load NaN or infinite values (a diverged run's
            checkpoint) instead of refusing them.
        mapping: Renames the state's layers to the model's, as
            [load][unified_params.load]'s ``mapping`` does a file's.

    Raises:
        CheckpointError: ``strict`` and the state does not fit, or a mapping
            gives two keys one name (nothing written).

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> state = {"weight": np.ones((2, 4)), "bias": np.zeros(2)}
        >>> report = up.load_state_dict(torch.nn.Linear(4, 2), state)
        >>> report.loaded, report.ok
        (['weight', 'bias'], True)
        >>> ddp = {"module.weight": np.ones((2, 4)), "module.bias": np.zeros(2)}
        >>> up.load_state_dict(torch.nn.Linear(4, 2), ddp, mapping={"module": ""}).ok
        True
    """
    check_layout(layout, unsaid=True)
    m = wrap(model)
    left_out: list[str] = []
    if mapping is not None:  # the state's layers renamed to the model's
        state, left_out = _state.renamed_state(state, Renaming(mapping, CheckpointError))
    own_layout: dict[str, str] = {}
    aliases = state.aliases if isinstance(state, _state.State) else None  # a tie group's other paths
    said_canonical = layout == "canonical"
    if isinstance(state, _state.State) and state.layout == "native":  # it says its layout itself
        layout = _native_state_layout(state, m, layout)
    if layout == "native":  # each value in this framework's layout, also where no canonical one is known
        said_canonical = True  # converted here: canonical from now on
        given = _state._checked_state(state)
        # A Param is read in its canonical layout, whatever `layout` says of plain values.
        plain = {k: _state.Source.of(v, k) for k, v in given.items() if not isinstance(v, Param)}
        native, own_layout = _state.native_sources(m, plain)
        state = {**native, **{k: v for k, v in given.items() if isinstance(v, Param)}}
    elif isinstance(state, _state.State) and state.source_backend is not None:  # up.state_dict's: it says
        written = (state.flattened_naive, state.unflattened_naive)
        _state.refuse_orders(m, written, state.source_backend, "state")
    report = _state.load(
        m, state, strict=strict, allow_nonfinite=allow_nonfinite, own_layout=own_layout,
        said_canonical=said_canonical, aliases=aliases,
    )  # fmt: skip
    report.skipped += left_out
    return report


def _native_state_layout(state: _state.State, model: Any, layout: str | None) -> str:
    """``"native"``, for a state in its own framework's layout loaded into a
    model of that framework; any other load of it is refused."""
    own = state.source_backend
    if own == model.backend and layout in (None, "native"):
        return "native"
    told = (
        f"load it with layout='native' or none: layout={layout!r} would read its values in the canonical "
        "(PyTorch) layout"
        if own == model.backend
        else f"it loads only into a {own} model. Expected a canonical state, up.state_dict(source), for a "
        f"{model.backend} model"
    )
    raise CheckpointError(
        f"This state is in {own}'s own layout (up.state_dict(model, layout='native')): {told}. "
        + received(state_backend=own, model=model.backend, layout=layout)
    )


def save(
    model: Any,
    file: str | Path,
    *,
    max_shard_size: int | str | None = None,
    progress: bool | None = None,
    durable: bool = True,
    mapping: Mapping[str, str] | Sequence[tuple[str, str | None]] | None = None,
) -> list[Path]:
    """Save the canonical state to a safetensors file, atomically.

    Tie groups are stored once, with their aliases in the metadata, together
    with the format version, source backend, library version and each layer's
    kind. With ``max_shard_size`` (bytes, or ``"500MB"``), shards and an index
    json are written in the Hugging Face layout. A file from any backend loads
    into the torch model of the same spec with
    ``safetensors.torch.load_model(model, file)`` (which knows shared
    tensors), or, for a model without ties, ``load_file`` and
    ``load_state_dict``. ``progress`` shows a bar (default: above 100 MB on an
    interactive terminal).

    The file is written beside its final name and renamed over it, so a crash
    never leaves a half-written checkpoint. A sharded save commits as one
    unit: shards under new names, then the index, then the old checkpoint's
    files (shards, or a single file of the same name) are removed; one name
    always means one checkpoint. With ``durable`` (the default) it is
    also flushed to the disk before and after the rename, which survives a
    power cut; ``durable=False`` skips the flushes, as ``torch.save`` and
    ``safetensors`` do, and returns as soon as the bytes are in the page cache.

    A model sharded over processes (torch ``fully_shard``) is saved by every
    process at once (a collective call): the file is the one the unsharded
    model gives, byte for byte; each process writes only the blocks it holds,
    straight to their place in the file, and rank 0 commits it once all
    succeeded. The processes must share the folder (see the Sharded models page).

    ``mapping`` writes the model's layers under another model's paths, as
    [load][unified_params.load]'s renames a file's: a dict of layer paths,
    or ``(pattern, replacement)`` rules (``None`` leaves a layer out). So a
    model written in another framework saves a checkpoint that the torch
    model it was ported from loads by its own names (transformers'
    ``from_pretrained``).

    Returns:
        The files written, the index last.

    Raises:
        CheckpointError: The file cannot be written (an existing file is
            kept), or a mapping gives two keys one name.

    Examples:
        >>> import torch, tempfile, os
        >>> import unified_params as up
        >>> path = os.path.join(tempfile.mkdtemp(), "mlp.safetensors")
        >>> [p.name for p in up.save(torch.nn.Linear(4, 2), path)]
        ['mlp.safetensors']
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 2))
        >>> _ = up.save(net, path, mapping={"0": "fc"})  # keys "fc.weight", ...
        >>> up.load(torch.nn.Linear(4, 2), path, mapping={"fc": ""}).loaded
        ['weight', 'bias']
    """
    return _checkpoint.save(
        wrap(model), file, max_shard_size=max_shard_size, progress=progress, durable=durable, mapping=mapping
    )


def load(
    model: Any,
    file: str | Path,
    *,
    strict: bool = True,
    progress: bool | None = None,
    allow_nonfinite: bool = False,
    layout: str | None = None,
    mapping: Mapping[str, str] | Sequence[tuple[str, str | None]] | None = None,
) -> LoadReport:
    """Load a safetensors checkpoint (single file or sharded index) in place.

    Headers are validated against the real file sizes before any data is
    read; nothing is ever unpickled. Every tensor is read (with ordinary
    reads: a file that shrinks meanwhile is an error, never a crash) and
    checked before the first write. Transactional, as [load_state_dict][unified_params.load_state_dict].

    While it runs, the load holds a read lease on each file where the system
    grants one (Linux; a file the user owns, on a local file system, that no
    one has open for writing): another process that opens the file for
    writing waits until the load is done. With that proof that the file
    cannot change, a value of the parameter's dtype is checked as it streams
    through a small buffer, then read again when it is written: straight
    into the parameter's memory where the framework lends it and the layout
    is the file's (torch, paddle), else into memory the value before let go
    (which a Keras variable keeps as its own). So no copy of the checkpoint
    is held. Otherwise every value is read into memory before the first write.

    When one name holds both a single file and a sharded checkpoint, the load
    is refused. Into a model sharded over processes, every process loads at
    once (a collective call) and reads only the bytes of the blocks it holds.

    A file this library wrote, or torch (its metadata's ``format`` is
    ``"pt"``, as Hugging Face and timm write it, or names no writer), holds
    the canonical layout. Another writer's (PaddleNLP writes ``"np"`` files
    of paddle's layouts under torch's names) may hold a framework's own: a
    tensor whose shape fits both (a square Linear's weight) is refused until
    ``layout`` says which (`LoadReport.ambiguous`).

    Args:
        model: A native model or a view.
        file: The file, an index, or the name a sharded checkpoint was saved under.
        strict: Refuse (and write nothing) unless the file fits exactly.
        progress: Show a progress bar (``None``: for large loads on a terminal).
        allow_nonfinite: Load NaN or infinite values instead of refusing them.
        layout: ``"canonical"`` (PyTorch's), ``"native"`` (every tensor in this
            model's framework's own layout, keyed by canonical paths or the
            framework's own leaf names, as a PaddleNLP file for a paddle
            model), or ``None`` (the default): canonical, refusing what
            another writer's file may hold otherwise.
        mapping: Renames the file's layers to the model's, as a port's
            ``mapping`` pairs layers: a dict of layer paths, or ordered
            ``(pattern, replacement)`` rules over a key's layer path (the key
            without its last name), the first that matches the whole path
            giving the new one; ``None`` as a replacement leaves the layer's
            keys out (listed in ``skipped``). Layers no rule names keep
            their paths. So a checkpoint of another framework's model loads
            without that model: ``[(r"transformer\\.(.*)", r"\\1")]``.

    Raises:
        CheckpointError: A missing, malformed or non-safetensors file, a
            mapping that gives two keys one name, or (with ``strict``) a
            state that does not fit. The model is unchanged.

    Examples:
        >>> import torch, tempfile, os
        >>> import unified_params as up
        >>> path = os.path.join(tempfile.mkdtemp(), "lin.safetensors")
        >>> _ = up.save(torch.nn.Linear(4, 2), path)
        >>> up.load(torch.nn.Linear(4, 2), path).ok
        True
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 2))
        >>> up.load(net, path, mapping={"": "0"}).loaded  # the file's top layer: "0"
        ['0.weight', '0.bias']
    """
    return _checkpoint.load_file(
        wrap(model), file, strict=strict, progress=progress, allow_nonfinite=allow_nonfinite, layout=layout,
        mapping=mapping,
    )  # fmt: skip


def port(
    src: Any,
    dst: Any,
    *,
    check_input: Any = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    mapping: Mapping[str, str] | Sequence[tuple[str, str | None]] | None = None,
    progress: bool | None = None,
    align: str | None = None,
    flatten: Mapping[str, tuple[int, ...] | None] | None = None,
    leaves: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
    fold_biases: bool = False,
    unflatten: Mapping[str, tuple[int, ...] | None] | None = None,
    skip: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> PortReport:
    """Copy weights from one model into another, across frameworks.

    Parameterised layers are matched in order by kind and canonical shapes
    (names may differ); ``mapping`` (source layer path -> destination layer
    path) pins pairs. Where order and names both differ, ``mapping`` is a list
    of ``(pattern, replacement)`` rules instead: regular expressions over
    source layer paths, the first that matches a whole path gives the
    destination path (``\\1`` for a group; ``None`` leaves the layer out), and
    layers left unmatched on either side are reported in one error.
    ``skip`` (source layer paths) leaves source layers out: a classifier
    the destination lacks. ``keep`` (destination layer paths) leaves
    destination layers as they are: a new head, or a preprocessing layer
    the source lacks (keras.applications' EfficientNet normalises its input
    in a layer of its own). Both are listed in the report (``skipped``,
    ``kept``); a refusal that finds one side's extra layers names them so.
    ``leaves`` renames leaves of source layers (rules or a dict) where a kind
    the library does not know keeps the framework's names; such leaves that
    differ only by axes of size one (a layer scale's ``(C, 1, 1)`` and
    ``(C,)``) move reshaped, which the report notes and, without
    ``check_input``, a warning asks to verify. A Linear pairs with a
    pointwise convolution (kernel of ones, stride 1, no padding, one
    group), its weight reshaped. A pair that differs otherwise (a shape, a
    kind) is refused, saying what differs. A
    torch or paddle recurrent layer of several layers or both directions
    pairs part by part (``"lstm[l0]"``, ``"lstm[l0_reverse]"``, ...), as
    Keras and Flax NNX keep one module per layer and direction. A layer
    with a low-rank update (LoRA: Keras' ``enable_lora``, NNX's
    ``LoRALinear``, peft's LoRA layers in torch) pairs with one without: a
    source's updates are merged into its weight, a destination's reset (the
    factor that starts at zero zeros again), and ``notes`` says so. A
    layer a model holds but does not compute with now (the original beside
    the trained copy peft's ``modules_to_save`` runs) is paired on neither
    side: a destination's is left as it was.

    With ``check_input`` (a canonical, channels-first input), both models
    run in inference mode and an output farther than
    ``atol + rtol * |source output|`` from the source's (``numpy.allclose``'s
    rule: deep networks differ by float rounding in proportion to their
    outputs) raises `PortError` with the destination restored; the
    error's ``report`` attribute holds the [PortReport][unified_params.PortReport] (pairs,
    settings that differ, the largest difference); a difference within
    float32 rounding of the outputs' scale is named so, with an ``atol`` in
    proportion to pass for a deep network. A check that any
    model would pass is refused the same way: when every source output is
    within ``atol`` of zero, or the source's output for ``check_input`` is
    within the tolerance of its output for zeros (random weights whose
    features fade on the way to the head answer the last bias for any
    input). The input is checked
    against both models before anything is written. Every value is validated
    (shape, dtype, finite) before the first write, as `load` does, so a
    refused port leaves the destination as it was; only with ``check_input``
    is a copy of the destination's values kept, to give back when the outputs
    differ.

    A leaf one side of a pair lacks (a bias, a BatchNorm's scale or shift:
    torchvision's convolutions have no bias, keras.applications' do) is no
    mismatch: a destination leaf the source lacks is set to its neutral value
    (zeros, ones), with which the layer computes what the source's does; a
    source leaf the destination lacks must hold that value, else the port is
    refused before anything is written. With ``fold_biases=True``, a source
    bias of other values whose layer feeds a BatchNorm alone is folded into
    that BatchNorm's running mean (exact in inference and training); where the
    framework records no graph (torch, paddle, Flax NNX), that the layer feeds
    the BatchNorm alone is the user's word. The report's ``absent`` lists
    each leaf filled, left out or folded.

    Settings that change what the weights mean (normalisations' ``eps`` and
    ``momentum``, a GroupNorm's ``num_groups``, a recurrent layer's
    activations, direction and how a bidirectional layer merges its
    directions, a convolution's stride, dilation, padding and padding mode,
    a layer without weights that scales at inference, such as paddle's
    ``Dropout(mode="downscale_in_infer")``, on one side only, and the
    activation a paired layer's output goes through where both frameworks
    show it: a Keras layer's own ``activation`` or its graph's next layer, a
    torch or paddle Sequential's next child) are compared and listed in the
    report's ``differences``. Padding is
    compared where the windows fall on the input both layers take, zeros of
    a padding layer before the convolution included (a Keras graph, a torch
    or paddle Sequential), at the input size a framework records or else at
    every size: torch's ``padding=1`` and Keras' ``"same"`` with stride 2
    agree on odd sizes only. Pooling layers with a window are compared the
    same way, with their kind, ``ceil_mode`` and what an average divides by
    (``count_include_pad``), the n-th of each model paired when both list as
    many of the same window sizes; upsampling layers by their interpolation
    and scale, the n-th paired when both list as many. Activations are
    named with their settings (``leaky_relu(negative_slope=0.01)``), in
    order where several follow a layer (``relu then sigmoid``). One
    that changes outputs (all but ``momentum``), without ``check_input``,
    also warns (``UserWarning``). ``align="hyperparameters"`` sets the
    destination's ``eps`` and ``momentum`` to the source's (converted to each
    framework's convention, listed in ``aligned``, given back if the port
    fails), so a port between zoos whose defaults differ (torch eps 1e-5,
    Keras 1e-3) verifies; the others are the layer's architecture.

    A Linear after a Flatten of a feature map takes its inputs ``(C, H, W)`` on
    a channels-first framework and ``(H, W, C)`` on a channels-last one. A
    Keras functional or Sequential model records its Flatten, and its weights
    are converted with nothing declared. Where no framework records it (a
    flatten inside a forward method, a Flax NNX model), ``flatten`` (a layer
    path of either model -> the ``(C, H, W)`` shape of the map its inputs
    flatten, or ``None``: no map) says it; undeclared, such a port is refused,
    or, when no Flatten layer shows the map, left to ``check_input`` and
    noted in the report's ``notes``. The same holds for a Linear whose
    outputs are reshaped into a map (a generator's, before a transposed
    convolution), its weight's rows and bias (and a normalisation of its
    features between) in ``(C, H, W)`` or ``(H, W, C)`` order: a Keras graph
    records the reshape; elsewhere ``unflatten`` (a Linear's path -> the
    ``(C, H, W)`` shape of the map, or ``None``) says it, and undeclared
    such a port is refused.

    Raises:
        PortError: The architectures do not match, outputs differ, or
            ``check_input`` cannot tell the weights apart.
        ShapeError: ``check_input`` does not fit a model (nothing written).

    Examples:
        >>> import torch
        >>> import unified_params as up
        >>> a, b = torch.nn.Linear(4, 2), torch.nn.Sequential(torch.nn.Linear(4, 2))
        >>> up.port(a, b).pairs
        [('', '0', 'linear')]
        >>> up.port(b, a, mapping=[(r"(\\d+)", "")]).pairs
        [('0', '', 'linear')]
        >>> head = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Linear(2, 3))
        >>> up.port(a, head, keep=["1"]).kept
        ['1 (Linear): weight, bias']
    """
    return _port.port(
        wrap(src),
        wrap(dst),
        check_input=check_input,
        atol=atol,
        rtol=rtol,
        mapping=mapping,
        progress=progress,
        align=align,
        flatten=flatten,
        leaves=leaves,
        fold_biases=fold_biases,
        unflatten=unflatten,
        skip=skip,
        keep=keep,
    )


def convert(
    source: str | Path, destination: str | Path, *, to: str | None = None, prefix: str = ""
) -> ConvertReport:
    """Convert a checkpoint between safetensors and another format, one tensor at a time.

    The formats besides safetensors come from the backends: ``"dcp"``, the
    folders torch.distributed.checkpoint writes (``dcp.save`` from any number
    of ranks). The format of ``source`` is recognised; ``destination`` is
    safetensors when its name ends in ``.safetensors``, else the format ``to``
    names (by default the only other format). Names are kept as stored;
    ``prefix`` keeps the tensors under it, without it (``"model."`` for a DCP
    folder of a whole training state). Entries that are not tensors are
    listed in the report's ``skipped``. Runs in one process.

    Raises:
        CheckpointError: An unreadable source, an unknown format, or a
            conversion with safetensors on neither side.

    Examples:
        >>> import torch, tempfile
        >>> import unified_params as up
        >>> d = tempfile.mkdtemp()
        >>> _ = up.save(torch.nn.Linear(4, 2), f"{d}/lin.safetensors")
        >>> up.convert(f"{d}/lin.safetensors", f"{d}/lin-dcp").tensors  # a DCP folder
        ['weight', 'bias']
        >>> up.convert(f"{d}/lin-dcp", f"{d}/again.safetensors").source
        'dcp'
    """
    from ._core.formats import convert as _convert
    from .backends.registry import checkpoint_formats

    return _convert(Path(source), Path(destination), checkpoint_formats(), to=to, prefix=prefix)
