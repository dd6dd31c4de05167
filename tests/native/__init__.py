"""One fixture module per backend: what the conformance suite needs to speak
each framework natively.

``tests/native/<framework>.py`` defines ``NATIVE``, a `Native`: the textbook
chapter's models written the framework's own way, the framework's own
listing, forward and backward, and the expected differences between
frameworks as data. Conformance tests take it through the ``native`` fixture
and never branch on a backend's name; a new framework needs one module here
(and one adapter package).
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import numpy as np

from unified_params.backends import registry

#: The chapter's input to its first models.
X = np.random.default_rng(0).uniform(size=(2, 4)).astype("float32")


class Native:
    """What a conformance test needs from one framework; subclasses fill it in.

    Data attributes say where a framework differs by design (positions, names,
    counts); methods build models and run them natively.
    """

    #: The chapter's models as the framework writes them: positions, paths, counts.
    textbook: ClassVar[dict[str, dict[str, Any]]]
    #: The framework's class name of a fully connected layer.
    linear_type: ClassVar[str]
    #: The native name of a Linear's weight.
    kernel_name: ClassVar[str]
    #: Position of the first Linear in the chapter's MLP (Keras' starts with a Flatten).
    first_linear: ClassVar[int] = 0
    #: Position, inside a block1 of the nested model, of its first Linear.
    block_linear: ClassVar[int] = 0
    #: Buffers a Conv+BatchNorm model keeps (torch also counts batches).
    cnn_buffers: ClassVar[int] = 2
    #: Recurrent kinds kept with one bias (b_ih + b_hh) instead of two.
    summed_biases: ClassVar[frozenset[str]] = frozenset()
    #: Spec models whose port into this framework converts axes (channels-last kernels).
    converts_axes: ClassVar[tuple[str, ...]] = ()
    #: The native shape and name of a depthwise conv kernel (3 channels, multiplier 2, 3x3).
    depthwise: ClassVar[tuple[tuple[int, ...], str]] = ((6, 1, 3, 3), "weight")
    #: Whether a native backward pass leaves gradients where ``p.grad`` reads them.
    native_grad_slot: ClassVar[bool] = True
    #: Whether a built layer's variables may be added natively after build.
    open_state: ClassVar[bool] = True
    #: Spec layers the framework cannot express exactly, with a phrase of the
    #: refusal: `up.spec` must refuse them (Flax NNX's GRU cell lacks torch's b_hn).
    refused_layers: ClassVar[dict[type, str]] = {}
    #: Whether the framework lists a module's attributes by name rather than in
    #: the order they were set (NNX): its attribute children come sorted, and
    #: its own listing of variables sorted by path.
    sorted_listing: ClassVar[bool] = False
    #: Whether a layer keeps its variables in an ordered mapping that can be
    #: reordered natively (`reorder_variables`).
    reorderable: ClassVar[bool] = False
    #: Whether a built Sequential records the map its Flatten takes (a graph
    #: with shapes), so a Linear after it is canonical (torch's (C, H, W)
    #: inputs) on a channels-last framework; channels-first ones need not.
    records_flatten: ClassVar[bool] = False

    # -- the chapter's models ---------------------------------------------------
    def mlp(self) -> Any:
        raise NotImplementedError

    def rgnet(self) -> Any:
        raise NotImplementedError

    def shared_mlp(self) -> Any:
        raise NotImplementedError

    def shared_dense(self) -> Any:
        """The chapter's Keras tying cell in this framework: Flatten, one 4x4 layer
        twice, a head of one output."""
        raise NotImplementedError

    def unbuilt_mlp(self) -> Any | None:
        """The chapter's MLP before its variables exist (Keras builds them on the
        first call, a torch lazy module shapes them then); ``None`` where a layer
        makes them when it is constructed."""
        return None

    def with_an_unused_layer(self) -> Any | None:
        """A model called on `X` that holds, at ``unused``, a layer its forward
        pass does not use, so that layer stays unbuilt (a Keras layer, a torch
        lazy module); ``used`` is a Linear(4, 2) it uses. ``None`` where a layer
        makes its variables when it is constructed."""
        return None

    def with_lora(self, model: Any, position: int, rank: int) -> Any | None:
        """``model`` with its Linear at ``position`` given a low-rank update
        (LoRA) of ``rank`` whose factors are both non-zero, so the update changes
        the outputs (Keras' ``enable_lora``, NNX's ``LoRALinear``); ``None`` where
        the framework has no LoRA layer of its own."""
        return None

    def valueless_mlp(self) -> Any | None:
        """The chapter's MLP with variables of a shape and no values (torch's
        meta device, ``paddle.LazyGuard``, ``nnx.eval_shape``); ``None`` where
        the framework makes no such model."""
        return None

    #: Whether a whole write gives a `valueless_mlp`'s variable its values
    #: (paddle's and NNX's take them; a tensor on torch's meta device holds none).
    valueless_takes_writes: ClassVar[bool] = True

    # -- other native models ------------------------------------------------------
    def subclassed(self) -> Any:
        """Attribute children (encoder Linear(4, 6)), a list of two Linear(6, 6) blocks, a head Linear(6, 2)."""
        raise NotImplementedError

    def two_attributes(self) -> Any:
        """A subclassed model with attributes ``first`` and ``second``, both Linear(6, 6)."""
        raise NotImplementedError

    def embedding_in_a_linear(self) -> Any | None:
        """A model of an ``emb`` Embedding(4, 4) and a ``head`` Linear(4, 4) without
        bias, running ``head(emb(x))``, whose head holds the embedding's very
        matrix as its weight, set natively; ``None`` where the framework cannot."""
        return None

    #: Where a `wrapper_holding_kernel` keeps its inner layer's kernel, within the
    #: wrapper: the attribute's name, or Keras' name for the variable.
    held_kernel: ClassVar[str] = "w"

    def wrapper_holding_kernel(self, width: int) -> Any:
        """A Sequential of one wrapper of a class the library does not know: it
        holds a Linear(4, ``width``) as ``layer`` and that layer's weight itself
        too (as Keras' SpectralNormalization holds its Dense's kernel)."""
        raise NotImplementedError

    def sibling_holding_kernel(self, width: int) -> Any:
        """A Sequential of a Linear(4, ``width``) and, after it, a layer of a
        class the library does not know that holds that Linear's weight (as
        `held_kernel`) and passes its input through."""
        raise NotImplementedError

    def conv(self, dims: int) -> Any:
        """A Conv1d or Conv3d from 2 to 5 channels, kernel 3."""
        raise NotImplementedError

    def flatten_in_forward(self) -> Any:
        """Attributes ``conv`` (Conv2d(3, 4, 3)) and ``fc`` (Linear(64, 2)); the
        forward flattens the ReLU'd 4 x 4 x 4 map with a tensor operation, no
        Flatten layer (takes 6 x 6 images)."""
        raise NotImplementedError

    def pools_in_code(self) -> Any:
        """A module of the user's own, with no pooling or upsampling layer, whose
        forward max-pools and interpolates with the framework's functions."""
        raise NotImplementedError

    def weightless_layers(self) -> list[Any]:
        """The framework's own max and average pooling and upsampling layers
        (none where it pools with functions only: NNX)."""
        raise NotImplementedError

    def prelu(self) -> tuple[Any, str]:
        """A PReLU layer (a kind the library does not know) and its parameter's native name."""
        raise NotImplementedError

    def time_major_lstm(self, input_size: int, hidden: int) -> Any | None:
        """An LSTM that takes ``(time, batch, features)``, as the framework writes
        one (torch's default); ``None`` where the framework has none."""
        return None

    def recurrent_stack(self, kind: str, input_size: int, hidden: int) -> Any | None:
        """Two recurrent layers (``kind``: ``"rnn"``, ``"lstm"`` or ``"gru"``), each
        running both ways, batch first, the whole sequence out, as the framework
        writes them; ``None`` where it has no such layer."""
        raise NotImplementedError

    def typed(self, dtype: str) -> Any:
        """Linear(4, 3) then ReLU, with parameters in ``dtype`` (float16, bfloat16)."""
        raise NotImplementedError

    # -- the framework's own operations ---------------------------------------------
    def forward(self, model: Any, x: np.ndarray, channels: bool | None = None) -> np.ndarray:
        """``model(x)`` in eval mode; ``x`` canonical (channels-first images)."""
        raise NotImplementedError

    def attention(self, layer: Any, x: np.ndarray) -> np.ndarray:
        """Self-attention of ``x`` (batch first), the framework's own call."""
        raise NotImplementedError

    def named_params(self, model: Any) -> list[tuple[str, tuple[int, ...]]]:
        """The framework's own deduplicated listing: (name, shape), buffers included."""
        raise NotImplementedError

    def values(self, model: Any) -> list[np.ndarray]:
        """Every variable's value, in the framework's own listing order."""
        raise NotImplementedError

    def count(self, model: Any) -> int:
        """Parameter elements as the framework counts them, running statistics excluded."""
        raise NotImplementedError

    def native_ties(self, model: Any) -> list[tuple[str, ...]] | None:
        """Tie groups of parameters as the framework itself lists them, or
        ``None`` when its own listing shows no aliases (Keras)."""
        return None

    def variable_count(self, model: Any) -> int:
        """How many distinct variables the framework tracks."""
        return len(self.named_params(model))

    def optimizer_params(self, model: Any) -> list[Any]:
        """What the framework hands an optimiser: its own deduplicated list of
        trainable tensors (torch's ``model.parameters()``)."""
        raise NotImplementedError

    def as_listed(self, var: Any) -> Any:
        """A variable as it appears in `optimizer_params`."""
        return var

    def layer(self, model: Any, position: int) -> Any:
        """The layer at a position of a sequential model."""
        raise NotImplementedError

    def sum_backward(self, model: Any, x: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of ``sum(model(x))`` by the framework's own backward, by native listing name."""
        raise NotImplementedError

    def seed(self, value: int) -> None:
        """Seed the framework's own random initialisers."""
        raise NotImplementedError

    def add_variable(self, layer: Any, name: str) -> None:
        """Give a layer one more trainable variable of shape (3,)."""
        raise NotImplementedError

    def replace_last_layer(self, model: Any) -> None:
        """Put a Linear(8, 3) where the last Linear(8, 2) of a 3-layer Sequential was."""
        raise NotImplementedError

    def reorder_variables(self, layer: Any) -> None:
        """Move a layer's first variable to the end of its own listing, in place."""
        raise NotImplementedError

    def to_numpy(self, tensor: Any) -> np.ndarray:
        """A native tensor or variable as numpy."""
        if hasattr(tensor, "detach"):
            tensor = tensor.detach()
        return np.asarray(tensor.numpy() if hasattr(tensor, "numpy") else tensor)


def for_backend(name: str) -> Native:
    """The fixture of a backend (by name or target: ``keras-jax`` uses Keras')."""
    framework, _ = registry.split_target(name)
    return importlib.import_module(f"tests.native.{framework}").NATIVE


def naive_flatten(name: str) -> bool:
    """Whether a spec Sequential on a backend keeps a flattened map's Linear in its
    framework's own (H, W, C) order: channels last, and no graph records the map."""
    framework, _ = registry.split_target(name)
    return registry.capabilities(framework).channels_last and not for_backend(name).records_flatten
