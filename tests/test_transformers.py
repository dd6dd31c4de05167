"""transformers' GPT-2 (torch): its ``Conv1D`` projections are Linears that
keep their weight ``(in, out)``. Listed canonical ``(out, in)``, they port into
a GPT built of ``nn.Linear`` (nanoGPT's layout, its parameter names GPT-2's)
and back, save to a file that such a model loads, initialise by the Conv1D's
own default, and carry peft's LoRA and DoRA (``fan_in_fan_out``) through a
port as ``merge_and_unload`` merges them; and port into GPTs written in
Keras, Flax NNX and paddle. A tiny configuration, random weights: nothing is
downloaded."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import unified_params as up
from tests.conftest import needs
from tests.zoo.models import import_torchvision

VOCAB, POSITIONS, WIDTH, HEADS, LAYERS = 50, 16, 32, 2, 2
IDS = np.random.default_rng(0).integers(0, VOCAB, (2, 10))


def _transformers():
    needs("torch")
    import_torchvision()  # transformers imports it
    return pytest.importorskip("transformers")


def _gpt2():
    """transformers' GPT-2 language model, tiny, in inference mode."""
    import torch

    transformers = _transformers()
    config = transformers.GPT2Config(
        n_layer=LAYERS, n_embd=WIDTH, n_head=HEADS, vocab_size=VOCAB, n_positions=POSITIONS,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config).eval()


def _linear_gpt():
    """GPT-2 as nanoGPT writes it: each projection an ``nn.Linear`` (weight
    ``(out, in)``), GPT-2's parameter names, the head tied to the token
    embedding."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(WIDTH, 3 * WIDTH), nn.Linear(WIDTH, WIDTH)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = (
                y.view(b, t, HEADS, c // HEADS).transpose(1, 2) for y in self.c_attn(x).split(c, dim=2)
            )
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(b, t, c))

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c_fc, self.c_proj = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)

        def forward(self, x):
            return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.attn, self.ln_2, self.mlp = (
                nn.LayerNorm(WIDTH),
                Attention(),
                nn.LayerNorm(WIDTH),
                MLP(),
            )

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = nn.ModuleDict({
                "wte": nn.Embedding(VOCAB, WIDTH), "wpe": nn.Embedding(POSITIONS, WIDTH),
                "h": nn.ModuleList([Block() for _ in range(LAYERS)]), "ln_f": nn.LayerNorm(WIDTH),
            })  # fmt: skip
            self.lm_head = nn.Linear(WIDTH, VOCAB, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx):
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1]))
            for block in self.transformer.h:
                x = block(x)
            return self.lm_head(self.transformer.ln_f(x))

    torch.manual_seed(1)
    return GPT().eval()


def _numpy(value) -> np.ndarray:
    """A Keras model's output or variable as numpy, on every Keras engine
    (``np.asarray`` of a torch tensor that requires grad fails)."""
    import keras

    return keras.ops.convert_to_numpy(value)


def _logits(model) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(torch.from_numpy(IDS))
    return getattr(out, "logits", out).numpy()


def test_a_conv1d_is_listed_as_a_linear_in_the_canonical_layout():
    """``c_attn.weight`` is kept ``(32, 96)``: it is listed ``(96, 32)``, a
    Linear's, its native layout opt-in; before, it was a leaf of an unknown
    layer, listed as kept."""
    model = _gpt2()
    p = up.wrap(model)["transformer.h.0.attn.c_attn.weight"]
    assert (p.shape, p.layer_kind, p.numpy("native").shape) == ((96, 32), "linear", (32, 96))
    np.testing.assert_array_equal(p.numpy(), model.transformer.h[0].attn.c_attn.weight.detach().numpy().T)
    assert "Conv1D             weight (96, 32)  bias (96,)" in up.summary(model)


def test_gpt2_runs_and_differentiates_through_its_logits():
    """A transformers model returns a ``ModelOutput``: ``up.forward`` gives
    its logits, and ``up.gradients`` (of their sum) a Conv1D weight's
    gradient in the canonical layout, torch's own transposed."""
    import torch

    model = _gpt2()
    np.testing.assert_array_equal(up.forward(model, IDS), _logits(model))
    found = up.gradients(model, IDS)["transformer.h.0.attn.c_attn.weight"]
    model.zero_grad()
    model(torch.from_numpy(IDS)).logits.sum().backward()
    np.testing.assert_array_equal(found, model.transformer.h[0].attn.c_attn.weight.grad.numpy().T)


@pytest.mark.parametrize("direction", ["gpt2 -> linear", "linear -> gpt2"])
def test_gpt2_ports_into_a_gpt_of_linears_and_back(direction):
    """What nanoGPT's ``from_pretrained`` does by hand (transposing every
    Conv1D weight) is a port, both ways: the logits agree, the head stays tied."""
    gpt2, linear = _gpt2(), _linear_gpt()
    source, dst = (gpt2, linear) if direction.startswith("gpt2") else (linear, gpt2)
    assert np.abs(_logits(source) - _logits(dst)).max() > 1e-2
    report = up.port(source, dst, check_input=IDS)
    assert report.max_abs_diff <= 1e-5
    np.testing.assert_allclose(_logits(dst), _logits(source), atol=1e-5)
    assert dst.lm_head.weight is dst.transformer.wte.weight


def test_a_gpt2_file_loads_into_a_gpt_of_linears_with_torch_alone(tmp_path):
    """``up.save`` writes the canonical layout: the Linear GPT loads the file
    with safetensors and ``load_state_dict``, no transposing, its logits
    GPT-2's; ``up.load`` puts it back into GPT-2."""
    import safetensors.torch

    gpt2, linear = _gpt2(), _linear_gpt()
    up.save(gpt2, tmp_path / "gpt2.safetensors")
    state = safetensors.torch.load_file(tmp_path / "gpt2.safetensors")
    assert tuple(state["transformer.h.0.attn.c_attn.weight"].shape) == (96, 32)
    linear.load_state_dict(state, strict=False)  # the tied head is saved once, as the embedding
    np.testing.assert_allclose(_logits(linear), _logits(gpt2), atol=1e-5)
    again = _gpt2()
    for p in again.parameters():
        p.data.normal_()
    up.load(again, tmp_path / "gpt2.safetensors")
    np.testing.assert_array_equal(_logits(again), _logits(gpt2))


def test_a_conv1d_s_default_initialisation_is_its_own():
    """transformers' Conv1D draws its weight from N(0, 0.02) and zeros its
    bias: ``Default()`` does the same, not a torch Linear's uniform."""
    model = _gpt2()
    up.initialize(model, up.init.Default(), where="*.c_fc.*")
    weights = np.concatenate(
        [block.mlp.c_fc.weight.detach().numpy().ravel() for block in model.transformer.h]
    )
    assert abs(weights.std() - 0.02) < 0.002 and np.abs(weights).max() > 0.05  # a normal's tail
    assert not any(block.mlp.c_fc.bias.detach().numpy().any() for block in model.transformer.h)


@pytest.mark.parametrize("dora", [False, True])
def test_a_gpt2_fine_tuned_with_peft_ports_with_its_updates_merged(dora):
    """peft adds a Conv1D's update transposed (``fan_in_fan_out``): the port
    merges it (DoRA's magnitudes too) as ``merge_and_unload`` does, and back
    into a peft GPT-2 resets it. Before: refused, fan_in_fan_out weights."""
    import peft
    import torch

    source = peft.get_peft_model(
        _gpt2(),
        peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj", "c_fc"], init_lora_weights=False,
                        use_dora=dora),
    ).eval()  # fmt: skip
    with torch.no_grad():
        for module in source.modules():
            if "default" in getattr(module, "lora_magnitude_vector", {}):
                magnitude = module.lora_magnitude_vector["default"].weight
                magnitude.mul_(torch.rand(magnitude.shape) + 0.5)
    linear = _linear_gpt()
    report = up.port(source, linear, check_input=IDS)
    assert report.max_abs_diff <= 1e-5 and report.notes[0].startswith("LoRA merged")
    merged = dict(copy.deepcopy(source).merge_and_unload().named_parameters())
    for name, p in linear.named_parameters():
        want = merged[name].detach().numpy()
        np.testing.assert_allclose(
            p.detach().numpy(), want.T if ".c_" in name else want, rtol=1e-5, atol=1e-6
        )
    back = peft.get_peft_model(
        _gpt2(), peft.LoraConfig(r=4, target_modules=["c_attn"], init_lora_weights=False, use_dora=dora)
    ).eval()
    report = up.port(linear, back, check_input=IDS)
    assert report.max_abs_diff <= 1e-5 and report.notes[-1].startswith("LoRA reset")
    assert (
        not back.base_model.model.transformer.h[0].attn.c_attn.lora_B["default"].weight.detach().numpy().any()
    )


def _keras_gpt():
    """GPT-2 written in Keras 3: each projection a ``Dense`` (kernel
    ``(in, out)``, as a Conv1D keeps it), the head the token embedding's
    transpose; built on the test's ids."""
    needs("keras")
    import keras
    from keras import layers, ops

    causal = ops.convert_to_tensor(np.tril(np.ones((POSITIONS, POSITIONS), bool)))  # a tensor of any engine

    class Block(keras.layers.Layer):
        def __init__(self) -> None:
            super().__init__()
            # Keras lists layers in the order they are set: here, the order they run in.
            self.ln_1 = layers.LayerNormalization(epsilon=1e-5)
            self.c_attn, self.c_proj = layers.Dense(3 * WIDTH), layers.Dense(WIDTH)
            self.ln_2 = layers.LayerNormalization(epsilon=1e-5)
            self.c_fc, self.mlp_proj = layers.Dense(4 * WIDTH), layers.Dense(WIDTH)

        def call(self, x):
            b, n = ops.shape(x)[0], ops.shape(x)[1]
            q, k, v = (
                ops.transpose(ops.reshape(y, (b, n, HEADS, WIDTH // HEADS)), (0, 2, 1, 3))
                for y in ops.split(self.c_attn(self.ln_1(x)), 3, axis=-1)
            )
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / np.sqrt(WIDTH // HEADS)
            y = ops.matmul(ops.softmax(ops.where(causal[:n, :n], scores, -1e9), axis=-1), v)
            x = x + self.c_proj(ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (b, n, WIDTH)))
            return x + self.mlp_proj(keras.activations.gelu(self.c_fc(self.ln_2(x)), approximate=True))

    class GPT(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = layers.Embedding(VOCAB, WIDTH), layers.Embedding(POSITIONS, WIDTH)
            self.h = [Block() for _ in range(LAYERS)]
            self.ln_f = layers.LayerNormalization(epsilon=1e-5)

        def call(self, ids):
            x = self.wte(ids) + self.wpe(ops.arange(ops.shape(ids)[1]))
            for block in self.h:
                x = block(x)
            return ops.matmul(self.ln_f(x), ops.transpose(self.wte.embeddings))

    model = GPT()
    model(IDS)
    return model


def test_gpt2_ports_into_a_keras_gpt_and_back():
    """Across frameworks: a Conv1D's ``(in, out)`` weight is a Dense kernel's
    layout, reached through the canonical one; GPT-2's tied head is one
    variable, as the Keras model's head is its embedding. Logits agree both
    ways."""
    gpt2, ported = _gpt2(), _keras_gpt()
    report = up.port(gpt2, ported, check_input=IDS)
    assert report.max_abs_diff <= 1e-5
    np.testing.assert_allclose(_numpy(ported(IDS)), _logits(gpt2), atol=1e-5)
    np.testing.assert_array_equal(
        _numpy(ported.h[0].c_attn.kernel), gpt2.transformer.h[0].attn.c_attn.weight.detach().numpy()
    )
    again = _gpt2()
    for p in again.parameters():
        p.data.normal_()
    report = up.port(ported, again, check_input=IDS)
    assert report.max_abs_diff <= 1e-5
    np.testing.assert_allclose(_logits(again), _logits(gpt2), atol=1e-5)


def _flax_gpt():
    """GPT-2 written in Flax NNX: each projection an ``nnx.Linear`` (kernel
    ``(in, out)``), the head the token embedding's ``attend``."""
    needs("flax")
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class Block(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.ln_1, self.ln_2 = (nnx.LayerNorm(WIDTH, epsilon=1e-5, rngs=rngs) for _ in range(2))
            self.c_attn, self.c_proj = (
                nnx.Linear(WIDTH, 3 * WIDTH, rngs=rngs),
                nnx.Linear(WIDTH, WIDTH, rngs=rngs),
            )
            self.c_fc, self.mlp_proj = (
                nnx.Linear(WIDTH, 4 * WIDTH, rngs=rngs),
                nnx.Linear(4 * WIDTH, WIDTH, rngs=rngs),
            )

        def __call__(self, x):
            b, n, _ = x.shape
            q, k, v = (
                y.reshape(b, n, HEADS, WIDTH // HEADS).transpose(0, 2, 1, 3)
                for y in jnp.split(self.c_attn(self.ln_1(x)), 3, axis=-1)
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(WIDTH // HEADS)
            y = jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((n, n), bool)), scores, -1e9), axis=-1) @ v
            x = x + self.c_proj(y.transpose(0, 2, 1, 3).reshape(b, n, WIDTH))
            return x + self.mlp_proj(jax.nn.gelu(self.c_fc(self.ln_2(x)), approximate=True))

    class GPT(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.wte, self.wpe = nnx.Embed(VOCAB, WIDTH, rngs=rngs), nnx.Embed(POSITIONS, WIDTH, rngs=rngs)
            self.h = nnx.List([Block(rngs) for _ in range(LAYERS)])
            self.ln_f = nnx.LayerNorm(WIDTH, epsilon=1e-5, rngs=rngs)

        def __call__(self, ids):
            x = self.wte(ids) + self.wpe(jnp.arange(ids.shape[1]))
            for block in self.h:
                x = block(x)
            return self.wte.attend(self.ln_f(x))

    return GPT(nnx.Rngs(2))


def _paddle_gpt():
    """GPT-2 written in paddle: each projection a ``paddle.nn.Linear``, whose
    weight is kept ``(in, out)`` as a Conv1D keeps it; the head the token
    embedding's transpose."""
    needs("paddle")
    import paddle
    from paddle import nn
    from paddle.nn import functional as F

    causal = paddle.to_tensor(np.tril(np.ones((POSITIONS, POSITIONS), bool)))

    class Block(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            # paddle lists sublayers in the order they are set: here, GPT-2's.
            self.ln_1, self.c_attn, self.c_proj = (
                nn.LayerNorm(WIDTH),
                nn.Linear(WIDTH, 3 * WIDTH),
                nn.Linear(WIDTH, WIDTH),
            )
            self.ln_2, self.c_fc, self.mlp_proj = (
                nn.LayerNorm(WIDTH),
                nn.Linear(WIDTH, 4 * WIDTH),
                nn.Linear(4 * WIDTH, WIDTH),
            )

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = (
                y.reshape([b, n, HEADS, WIDTH // HEADS]).transpose([0, 2, 1, 3])
                for y in paddle.split(self.c_attn(self.ln_1(x)), 3, axis=-1)
            )
            scores = paddle.matmul(q, k, transpose_y=True) / np.sqrt(WIDTH // HEADS)
            y = F.softmax(paddle.where(causal[:n, :n], scores, paddle.full_like(scores, -1e9)), axis=-1)
            x = x + self.c_proj(paddle.matmul(y, v).transpose([0, 2, 1, 3]).reshape([b, n, WIDTH]))
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate=True))

    class GPT(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.wte, self.wpe = nn.Embedding(VOCAB, WIDTH), nn.Embedding(POSITIONS, WIDTH)
            self.h = nn.LayerList([Block() for _ in range(LAYERS)])
            self.ln_f = nn.LayerNorm(WIDTH)

        def forward(self, ids):
            x = self.wte(ids) + self.wpe(paddle.arange(ids.shape[1]))
            for block in self.h:
                x = block(x)
            return paddle.matmul(self.ln_f(x), self.wte.weight, transpose_y=True)

    paddle.seed(3)
    model = GPT()
    model.eval()
    return model


#: GPT-2's layer paths, ``transformer.`` and the blocks' ``attn`` and ``mlp``
#: left out: what the GPTs above name them. NNX keeps no order among a module's
#: attributes (a port into it in order is refused), so the port pairs by these rules.
_TO_FLAT = [
    (r"transformer\.h\.(\d+)\.attn\.(c_attn|c_proj)", r"h.\1.\2"),
    (r"transformer\.h\.(\d+)\.mlp\.c_fc", r"h.\1.c_fc"),
    (r"transformer\.h\.(\d+)\.mlp\.c_proj", r"h.\1.mlp_proj"),
    (r"transformer\.(.*)", r"\1"),
]
_FROM_FLAT = [
    (r"h\.(\d+)\.(c_attn|c_proj)", r"transformer.h.\1.attn.\2"),
    (r"h\.(\d+)\.c_fc", r"transformer.h.\1.mlp.c_fc"),
    (r"h\.(\d+)\.mlp_proj", r"transformer.h.\1.mlp.c_proj"),
    (r"(.*)", r"transformer.\1"),
]


@pytest.mark.parametrize("framework", ["flax", "paddle"])
def test_gpt2_ports_into_a_flax_or_paddle_gpt_and_back(framework):
    """GPT-2 into a GPT written in Flax NNX (paired by rules) or paddle (in
    order): a paddle Linear keeps its weight as the Conv1D does, bit for bit;
    the logits agree both ways and GPT-2's head stays its embedding."""
    build = {"flax": _flax_gpt, "paddle": _paddle_gpt}[framework]
    to, back = (_TO_FLAT, _FROM_FLAT) if framework == "flax" else (None, None)
    gpt2, ported = _gpt2(), build()
    assert np.abs(up.forward(ported, IDS) - _logits(gpt2)).max() > 1e-2
    if framework == "flax":  # listed by name (c_fc before c_proj): in order, refused
        with pytest.raises(up.PortError, match="do not match"):
            up.port(gpt2, ported)
    report = up.port(gpt2, ported, check_input=IDS, mapping=to)
    assert report.max_abs_diff <= 1e-5
    np.testing.assert_allclose(up.forward(ported, IDS), _logits(gpt2), atol=1e-5)
    c_attn = ported.h[0].c_attn
    kept = c_attn.kernel if framework == "flax" else c_attn.weight
    np.testing.assert_array_equal(np.asarray(kept), gpt2.transformer.h[0].attn.c_attn.weight.detach().numpy())
    again = _gpt2()
    for p in again.parameters():
        p.data.normal_()
    report = up.port(ported, again, check_input=IDS, mapping=back)
    assert report.max_abs_diff <= 1e-5
    np.testing.assert_allclose(_logits(again), _logits(gpt2), atol=1e-5)
    assert again.lm_head.weight is again.transformer.wte.weight


#: A tiny Llama: grouped-query attention (4 heads, 2 of keys and values), its
#: RMSNorms' epsilon 1e-5 (Keras' default is 1e-6), its head apart.
LLAMA = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": POSITIONS, "rms_norm_eps": 1e-5}  # fmt: skip


def _llama():
    """transformers' Llama language model, tiny, in inference mode."""
    import torch

    transformers = _transformers()
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=0, **LLAMA
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval()


def _keras_llama(epsilon: float = 1e-6):
    """Llama written in Keras 3 with its ``RMSNormalization`` (a ``scale``
    per feature) and rotary positions; its layers set in the order Llama's
    modules are (attention, MLP, then the two norms), so that they pair in
    order."""
    needs("keras")
    import keras
    from keras import layers, ops

    width, heads, groups = LLAMA["hidden_size"], LLAMA["num_attention_heads"], LLAMA["num_key_value_heads"]
    size = width // heads
    causal = ops.convert_to_tensor(np.tril(np.ones((POSITIONS, POSITIONS), bool)))  # tensors of any engine
    frequencies = np.outer(np.arange(POSITIONS), 1.0 / 10000.0 ** (np.arange(0, size, 2) / size))
    angles = np.concatenate([frequencies, frequencies], -1).astype("float32")
    cos, sin = ops.convert_to_tensor(np.cos(angles)), ops.convert_to_tensor(np.sin(angles))

    def rotated(x, n):
        half = ops.concatenate([-x[..., size // 2 :], x[..., : size // 2]], -1)
        return x * cos[:n] + half * sin[:n]

    def dense(units):
        return layers.Dense(units, use_bias=False)

    class Block(keras.layers.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.q_proj, self.k_proj = dense(width), dense(groups * size)
            self.v_proj, self.o_proj = dense(groups * size), dense(width)
            self.gate_proj, self.up_proj, self.down_proj = dense(2 * width), dense(2 * width), dense(width)
            self.input_layernorm = layers.RMSNormalization(epsilon=epsilon)
            self.post_attention_layernorm = layers.RMSNormalization(epsilon=epsilon)

        def call(self, x):
            b, n = ops.shape(x)[0], ops.shape(x)[1]

            def split(y, count):
                return ops.transpose(ops.reshape(y, (b, n, count, size)), (0, 2, 1, 3))

            h = self.input_layernorm(x)
            q, k = rotated(split(self.q_proj(h), heads), n), rotated(split(self.k_proj(h), groups), n)
            k, v = (ops.repeat(y, heads // groups, axis=1) for y in (k, split(self.v_proj(h), groups)))
            scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / np.sqrt(size)
            y = ops.matmul(ops.softmax(ops.where(causal[:n, :n], scores, -1e9), axis=-1), v)
            x = x + self.o_proj(ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (b, n, width)))
            h = self.post_attention_layernorm(x)
            return x + self.down_proj(keras.activations.silu(self.gate_proj(h)) * self.up_proj(h))

    class Llama(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.embed_tokens = layers.Embedding(VOCAB, width)
            self.blocks = [Block() for _ in range(LLAMA["num_hidden_layers"])]
            self.norm = layers.RMSNormalization(epsilon=epsilon)
            self.lm_head = dense(VOCAB)

        def call(self, ids):
            x = self.embed_tokens(ids)
            for block in self.blocks:
                x = block(x)
            return self.lm_head(self.norm(x))

    model = Llama()
    model(IDS)
    return model


def test_a_llama_rmsnorm_is_an_rmsnorm_and_its_epsilon_is_read():
    """transformers' ``LlamaRMSNorm`` is of kind ``rmsnorm`` (before: a layer
    of unknown kind, which no port pairs with torch's, Keras' or NNX's
    RMSNorm); its ``variance_epsilon`` is the setting ``eps``, read and
    written."""
    model = _llama()
    norm = model.model.layers[0].input_layernorm
    p = up.wrap(model)["model.layers.0.input_layernorm.weight"]
    assert (p.layer_kind, p.shape) == ("rmsnorm", (32,))
    adapter = up.wrap(model).adapter
    assert adapter.hyperparameters(norm)["eps"] == 1e-5
    adapter.set_hyperparameters(norm, {"eps": 1e-6})
    assert norm.variance_epsilon == 1e-6 and "eps" not in vars(norm)


def test_llama_ports_into_a_keras_llama_and_back_with_its_epsilon():
    """Llama's RMSNorms pair with Keras' ``RMSNormalization``: their epsilons
    differ (1e-5 against Keras' 1e-6), which the port says, and
    ``align="hyperparameters"`` sets; then the logits agree both ways."""
    llama, ported = _llama(), _keras_llama()
    with pytest.raises(up.PortError, match=r"eps 1e-05 \(torch\) vs 1e-06 \(keras\)"):
        up.port(llama, ported, check_input=IDS)
    report = up.port(llama, ported, check_input=IDS, align="hyperparameters")
    assert report.max_abs_diff <= 1e-5 and report.aligned
    assert ported.norm.epsilon == 1e-5
    np.testing.assert_allclose(_numpy(ported(IDS)), _logits(llama), atol=1e-5)
    np.testing.assert_array_equal(
        _numpy(ported.blocks[1].post_attention_layernorm.scale),
        llama.model.layers[1].post_attention_layernorm.weight.detach().numpy(),
    )
    again = _llama()
    for p in again.parameters():
        p.data.normal_()
    again.model.norm.variance_epsilon = 1e-3
    report = up.port(ported, again, check_input=IDS, align="hyperparameters")
    assert report.max_abs_diff <= 1e-5 and again.model.norm.variance_epsilon == 1e-5
    np.testing.assert_allclose(_logits(again), _logits(llama), atol=1e-5)


def test_every_rmsnorm_declared_computes_as_torch_s_with_its_weight_or_one_plus_it():
    """Each transformers class declared an ``rmsnorm`` computes as
    ``nn.RMSNorm`` with its weight and epsilon, and each declared an
    ``rmsnorm_offset`` (Gemma's) as ``nn.RMSNorm`` with ``1 + weight``, its
    weight drawn as zeros (a change in transformers fails here). Cohere's
    LayerNorm, which subtracts the mean, is not declared: a port of it into a
    Keras RMSNorm is refused, not silently wrong."""
    import importlib

    import torch

    from unified_params.backends.torch import zoo_layers

    _transformers()
    x = torch.randn(3, 5, 8) * 3 + 1
    for offset, declared in ((0.0, zoo_layers.RMS_NORMS), (1.0, zoo_layers.OFFSET_RMS_NORMS)):
        for module, name in sorted(declared):
            layer = getattr(importlib.import_module(module), name)(8, eps=1e-3)
            attribute = zoo_layers.SETTINGS.get((module, name), {}).get("eps", "eps")
            assert getattr(layer, attribute) == 1e-3, name
            if offset:
                assert not layer.weight.detach().any(), name  # drawn as zeros: a scale of one
            assert up.wrap(layer)["weight"].layer_kind == ("rmsnorm_offset" if offset else "rmsnorm")
            reference = torch.nn.RMSNorm(8, eps=1e-3)
            with torch.no_grad():
                layer.weight.copy_(torch.randn(8))
                reference.weight.copy_(layer.weight + offset)
                np.testing.assert_allclose(layer(x).numpy(), reference(x).numpy(), atol=1e-5, err_msg=name)
    assert len(zoo_layers.RMS_NORMS) > 150 and len(zoo_layers.OFFSET_RMS_NORMS) >= 15
    from transformers.models.cohere import modeling_cohere

    cohere = modeling_cohere.CohereLayerNorm(8)
    assert up.wrap(cohere)["weight"].layer_kind == "other"
    needs("keras")
    import keras

    norm = keras.layers.RMSNormalization()
    norm.build((None, 8))
    with pytest.raises(up.PortError, match="kinds other and rmsnorm"):
        up.port(cohere, norm)


#: A tiny Gemma: its RMSNorms scale by ``1 + weight``, its head tied to the embedding.
GEMMA = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 1, "head_dim": 8, "max_position_embeddings": POSITIONS}  # fmt: skip


def _gemma(norms_of_torch: bool = False):
    """transformers' Gemma language model, tiny, in inference mode; with
    ``norms_of_torch``, each of its RMSNorms replaced by an ``nn.RMSNorm`` of
    its epsilon (the rest Gemma's code), as a model written with torch's
    layers keeps them."""
    import torch

    transformers = _transformers()
    config = transformers.GemmaConfig(
        vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=0, **GEMMA
    )
    torch.manual_seed(0)
    model = transformers.GemmaForCausalLM(config).eval()
    for p in model.parameters():  # the norms' weights too: not zeros, which would hide a wrong offset
        p.data.normal_(0, 0.2)
    if norms_of_torch:
        for path, module in list(model.named_modules()):
            if type(module).__name__ == "GemmaRMSNorm":
                parent, _, name = path.rpartition(".")
                setattr(
                    model.get_submodule(parent), name, torch.nn.RMSNorm(module.weight.shape, eps=module.eps)
                )
    return model


def test_gemma_s_rmsnorms_port_load_and_initialise_as_one_plus_their_weight(tmp_path):
    """Gemma's RMSNorm (kind ``rmsnorm_offset``) computes as an RMSNorm
    whose weight is one more than its own. Gemma ports into a model with
    ``nn.RMSNorm`` s (and back) with each weight converted, the logits
    within 1e-5; a file this library wrote of either loads into the other
    converted (the file names its layers' kinds), and so do Params (to
    ``load_state_dict``, whose unsaved buffers it skips, and ``set``); a
    state of bare arrays names no kind and loads as it is, as torch's
    ``load_state_dict`` would. Its default initialisation is zeros. Before, Gemma's norm was of unknown
    kind and none of these ports paired."""
    import torch

    gemma, plain = _gemma(), _gemma(norms_of_torch=True)
    norm, ported = (
        gemma.model.layers[1].post_attention_layernorm,
        plain.model.layers[1].post_attention_layernorm,
    )
    assert up.wrap(gemma)["model.norm.weight"].layer_kind == "rmsnorm_offset"
    report = up.port(gemma, plain, check_input=IDS)
    assert report.max_abs_diff <= 1e-5
    assert "model.norm.weight -> model.norm.weight: +1 (rmsnorm_offset to rmsnorm)" in report.conversions
    np.testing.assert_allclose(ported.weight.detach().numpy(), norm.weight.detach().numpy() + 1, atol=1e-7)
    np.testing.assert_allclose(_logits(plain), _logits(gemma), atol=1e-5)
    again = _gemma()
    for p in again.parameters():
        p.data.normal_()
    assert up.port(plain, again, check_input=IDS).max_abs_diff <= 1e-5
    np.testing.assert_allclose(_logits(again), _logits(gemma), atol=1e-5)

    up.save(gemma, tmp_path / "gemma.safetensors")
    fresh = _gemma(norms_of_torch=True)
    report = up.load(fresh, tmp_path / "gemma.safetensors")
    assert (
        report.ok
        and "model.norm.weight: +1 (given for a layer of kind rmsnorm_offset, here rmsnorm)" in report.notes
    )
    np.testing.assert_allclose(_logits(fresh), _logits(gemma), atol=1e-5)
    up.save(plain, tmp_path / "plain.safetensors", max_shard_size=20_000)  # shards: each names the kinds
    back = _gemma()
    assert up.load(back, tmp_path / "plain.safetensors").ok
    np.testing.assert_allclose(_logits(back), _logits(gemma), atol=1e-5)
    up.save(plain, tmp_path / "renamed.safetensors", mapping=[("model.norm", "final_norm")])
    back = _gemma()  # the kinds the file names follow its layers' new names
    assert up.load(back, tmp_path / "renamed.safetensors", mapping=[("final_norm", "model.norm")]).ok
    np.testing.assert_allclose(_logits(back), _logits(gemma), atol=1e-5)
    back = _gemma()
    with torch.no_grad():
        plain.model.rotary_emb.inv_freq.mul_(2)  # a buffer the model makes (persistent=False)
    report = up.load_state_dict(back, up.wrap(plain).params())
    assert report.ok and "model.rotary_emb.inv_freq" in report.skipped  # neither unexpected nor written
    assert torch.equal(back.model.rotary_emb.inv_freq * 2, plain.model.rotary_emb.inv_freq)
    np.testing.assert_allclose(_logits(back), _logits(gemma), atol=1e-5)
    one = up.wrap(_gemma())["model.norm.weight"]
    one.set(up.wrap(plain)["model.norm.weight"])  # a Param says its kind: converted too
    np.testing.assert_allclose(one.numpy(), gemma.model.norm.weight.detach().numpy(), atol=1e-7)
    as_is = _gemma()
    report = up.load_state_dict(as_is, up.state_dict(plain))
    assert report.ok and not report.notes  # bare arrays: canonical Gemma weights, by name
    assert torch.equal(as_is.model.norm.weight, plain.model.norm.weight)

    up.initialize(again, up.init.Default(), seed=0)
    assert not again.model.norm.weight.detach().any() and again.model.layers[0].mlp.up_proj.weight.any()


def test_a_bfloat16_gemma_norm_s_weight_plus_one_is_rounded_once(tmp_path):
    """``1 + w`` of a bfloat16 weight ``w`` is computed in float64 and rounded
    once, to the destination's dtype: into a float32 RMSNorm it is exact
    (rounded to bfloat16 first, it was off by up to 2**-8), by port, by file
    and by ``set``."""
    import torch

    norm = _gemma().model.norm.to(torch.bfloat16)
    exact = norm.weight.detach().double() + 1
    up.save(norm, tmp_path / "norm.safetensors")
    for how in ("port", "load", "set"):
        for dtype in (torch.float32, torch.bfloat16):
            plain = torch.nn.RMSNorm(32, eps=1e-6).to(dtype)
            if how == "port":
                up.port(norm, plain)
            elif how == "load":
                assert up.load(plain, tmp_path / "norm.safetensors").notes
            else:
                up.wrap(plain)["weight"].set(up.wrap(norm)["weight"])
            assert torch.equal(plain.weight.detach(), exact.to(dtype)), (how, dtype)


@pytest.mark.parametrize("framework", ["keras", "flax"])
def test_gemma_s_rmsnorm_ports_into_keras_and_nnx_rmsnorms_and_back(framework):
    """Gemma's norm into Keras' ``RMSNormalization`` or NNX's ``RMSNorm``
    (their ``scale`` one more than Gemma's weight) and back, outputs within
    1e-5, the weight given back as it was."""
    needs(framework)
    norm = _gemma().model.layers[1].post_attention_layernorm
    if framework == "keras":
        import keras

        other = keras.layers.RMSNormalization(epsilon=1e-6)
        other.build((None, 32))
    else:
        from flax import nnx

        other = nnx.RMSNorm(32, epsilon=1e-6, rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).normal(size=(3, 5, 32)).astype("float32")
    assert up.port(norm, other, check_input=x).max_abs_diff <= 1e-5
    np.testing.assert_allclose(
        _numpy(up.wrap(other)["weight"].numpy()), norm.weight.detach().numpy() + 1, atol=1e-6
    )
    back = type(norm)(32)
    assert up.port(other, back, check_input=x).max_abs_diff <= 1e-5
    np.testing.assert_allclose(back.weight.detach().numpy(), norm.weight.detach().numpy(), atol=1e-6)


def test_gpt2_s_own_file_and_tensors_hold_its_conv1d_layout_which_a_load_asks_for(tmp_path):
    """transformers' own file of GPT-2 (``save_pretrained``) and GPT-2's
    ``state_dict()`` keep each Conv1D weight ``(in, out)``: read as canonical
    they mismatch, and the square ones fit both readings, so they are asked
    for (``layout``), not loaded transposed; ``layout="native"`` loads
    them, and a file this library wrote needs no word. Before, the square
    ones loaded transposed with ``strict=False``, and ``p.set`` took GPT-2's
    own tensor as canonical."""
    gpt2, again = _gpt2(), _gpt2()
    for p in again.parameters():
        p.data.normal_()
    gpt2.save_pretrained(tmp_path)
    file = tmp_path / "model.safetensors"
    with pytest.raises(
        up.CheckpointError, match=r"is a tensor of a file whose writer is 'pt' in torch's own layout"
    ):
        up.load(again, file)
    report = up.load(again, file, strict=False)
    assert [key for key, _ in report.ambiguous] == [
        f"transformer.h.{i}.attn.c_proj.weight" for i in range(LAYERS)
    ]
    assert "transformer.h.0.attn.c_proj.weight" not in report.loaded
    assert up.load(again, file, layout="native").ok
    np.testing.assert_array_equal(_logits(again), _logits(gpt2))
    with pytest.raises(up.CheckpointError, match="layout='native' if they are in torch's own"):
        up.load_state_dict(again, {k: v for k, v in gpt2.state_dict().items() if ".c_proj." in k})
    assert up.load_state_dict(again, gpt2.state_dict(), layout="native").ok
    square = up.wrap(again)["transformer.h.0.attn.c_proj.weight"]
    with pytest.raises(up.ShapeError, match="torch keeps this leaf \\(in, out\\)"):
        square.set(gpt2.transformer.h[0].attn.c_proj.weight)
    up.save(gpt2, tmp_path / "ours.safetensors")  # canonical, as its metadata says: no question
    assert up.load(again, tmp_path / "ours.safetensors").ok


def _flax_llama():
    """Llama written in Flax NNX with transformers' module names (``nnx.RMSNorm``'s
    ``scale`` its norms' weight), its epsilon Llama's."""
    needs("flax")
    import jax
    import jax.numpy as jnp
    from flax import nnx

    width, heads, groups = LLAMA["hidden_size"], LLAMA["num_attention_heads"], LLAMA["num_key_value_heads"]
    size = width // heads
    frequencies = np.outer(np.arange(POSITIONS), 1.0 / 10000.0 ** (np.arange(0, size, 2) / size))
    angles = np.concatenate([frequencies, frequencies], -1).astype("float32")

    def rotated(x, n):
        half = jnp.concatenate([-x[..., size // 2 :], x[..., : size // 2]], -1)
        return x * np.cos(angles[:n]) + half * np.sin(angles[:n])

    def dense(a, b, rngs):
        return nnx.Linear(a, b, use_bias=False, rngs=rngs)

    def norm(rngs):
        return nnx.RMSNorm(width, epsilon=LLAMA["rms_norm_eps"], rngs=rngs)

    class Attention(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.q_proj, self.k_proj = dense(width, width, rngs), dense(width, groups * size, rngs)
            self.v_proj, self.o_proj = dense(width, groups * size, rngs), dense(width, width, rngs)

        def __call__(self, x):
            b, n, _ = x.shape

            def split(y, count):
                return y.reshape(b, n, count, size).transpose(0, 2, 1, 3)

            q, k = rotated(split(self.q_proj(x), heads), n), rotated(split(self.k_proj(x), groups), n)
            k, v = (jnp.repeat(y, heads // groups, axis=1) for y in (k, split(self.v_proj(x), groups)))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size)
            y = jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((n, n), bool)), scores, -1e9), axis=-1) @ v
            return self.o_proj(y.transpose(0, 2, 1, 3).reshape(b, n, width))

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.gate_proj, self.up_proj = dense(width, 2 * width, rngs), dense(width, 2 * width, rngs)
            self.down_proj = dense(2 * width, width, rngs)

        def __call__(self, x):
            return self.down_proj(jax.nn.silu(self.gate_proj(x)) * self.up_proj(x))

    class Layer(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.self_attn, self.mlp = Attention(rngs), MLP(rngs)
            self.input_layernorm, self.post_attention_layernorm = norm(rngs), norm(rngs)

        def __call__(self, x):
            x = x + self.self_attn(self.input_layernorm(x))
            return x + self.mlp(self.post_attention_layernorm(x))

    class Model(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.embed_tokens = nnx.Embed(VOCAB, width, rngs=rngs)
            self.layers = nnx.List([Layer(rngs) for _ in range(LLAMA["num_hidden_layers"])])
            self.norm = norm(rngs)

        def __call__(self, ids):
            x = self.embed_tokens(ids)
            for layer in self.layers:
                x = layer(x)
            return self.norm(x)

    class Llama(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.model, self.lm_head = Model(rngs), dense(width, VOCAB, rngs)

        def __call__(self, ids):
            return self.lm_head(self.model(ids))

    return Llama(nnx.Rngs(4))


def test_llama_ports_into_a_flax_llama_of_its_names_and_its_file_loads_as_it_is(tmp_path):
    """A Llama written in Flax NNX with transformers' names: NNX lists a
    module's attributes by name, so the port pairs by path (rules that keep
    each path) and agrees both ways; and transformers' own file of Llama
    loads into it with no mapping (its RMSNorms' ``scale``, Llama's
    ``weight``)."""
    same = [(r"(.*)", r"\1")]
    llama, flax_llama = _llama(), _flax_llama()
    assert np.abs(up.forward(flax_llama, IDS) - _logits(llama)).max() > 1e-2
    report = up.port(llama, flax_llama, check_input=IDS, mapping=same)
    assert report.max_abs_diff <= 1e-5
    np.testing.assert_allclose(up.forward(flax_llama, IDS), _logits(llama), atol=1e-5)
    again = _llama()
    for p in again.parameters():
        p.data.normal_()
    assert up.port(flax_llama, again, check_input=IDS, mapping=same).max_abs_diff <= 1e-5
    np.testing.assert_allclose(_logits(again), _logits(llama), atol=1e-5)
    llama.save_pretrained(tmp_path)
    fresh = _flax_llama()
    assert up.load(fresh, tmp_path / "model.safetensors").ok
    np.testing.assert_allclose(up.forward(fresh, IDS), _logits(llama), atol=1e-5)
