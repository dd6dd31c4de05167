"""Layers of torch model zoos that compute as a layer of a declared kind, known
by module and class name: nothing is imported to know them.

transformers' ``Conv1D`` (GPT-2's projections; checked against transformers
5.24) is a Linear, ``x @ weight + bias``, that keeps its weight ``(in, out)``
as paddle's Linear does; its constructor draws the weight from N(0, 0.02)
and zeros the bias. peft adds its LoRA update transposed (``fan_in_fan_out``).

Most of transformers' RMSNorms (Llama's, Mistral's, Qwen's, Phi-3's and most
others) compute ``weight * x / sqrt(mean(x ** 2) + eps)`` over the last axis,
as torch's ``nn.RMSNorm`` does, and most keep their epsilon as
``variance_epsilon``. Each one listed here was measured against
``nn.RMSNorm`` on transformers 5.24 (every ``*RMSNorm`` and ``*LayerNorm``
class of its models that holds a weight alone), and tests/test_transformers.py
measures them again. Gemma's and 14 others scale by ``1 + weight`` (their
weight drawn as zeros): kind ``rmsnorm_offset``, whose weight a port converts
to and from an ``rmsnorm``'s (`layouts.KIND_CONVERSIONS`). Left out, so of
unknown kind: Cohere's LayerNorm, which subtracts the mean, and the gated norms.
"""

from __future__ import annotations

from ..._core.initializers import Initializer, Normal, Zeros
from ..._core.layouts import Leaf


def _transformers(names: str) -> list[tuple[str, str]]:
    """``package.Class`` names of ``transformers.models.<package>.modeling_<package>``."""
    pairs = (name.split(".") for name in names.split())
    return [(f"transformers.models.{package}.modeling_{package}", cls) for package, cls in pairs]


#: transformers' ``Conv1D``, by module and class name.
CONV1D = ("transformers.pytorch_utils", "Conv1D")
#: transformers' RMSNorms that compute as ``nn.RMSNorm``, their epsilon ``variance_epsilon``.
_RMS_NORMS_VARIANCE_EPSILON = _transformers("""
    afmoe.AfmoeRMSNorm aimv2.Aimv2RMSNorm apertus.ApertusRMSNorm apertus1p5.Apertus1p5TextRMSNorm
    arcee.ArceeRMSNorm aria.AriaTextRMSNorm axk1.AXK1RMSNorm axk2.AXK2RMSNorm
    bailing_hybrid.BailingHybridRMSNorm bamba.BambaRMSNorm beam.BeamRMSNorm bitnet.BitNetRMSNorm
    blt.BltRMSNorm chameleon.ChameleonRMSNorm clvp.ClvpRMSNorm cohere2_moe.Cohere2MoeRMSNorm
    cosmos3_edge.Cosmos3EdgeTextRMSNorm csm.CsmRMSNorm cwm.CwmRMSNorm
    deepseek_ocr2.DeepseekOcr2TextRMSNorm deepseek_ocr2.DeepseekOcr2VisionRMSNorm
    deepseek_v2.DeepseekV2RMSNorm deepseek_v3.DeepseekV3RMSNorm deepseek_v32.DeepseekV32RMSNorm
    deepseek_v4.DeepseekV4RMSNorm deimv2.Deimv2RMSNorm dia.DiaRMSNorm diffllama.DiffLlamaRMSNorm
    doge.DogeRMSNorm dots1.Dots1RMSNorm dots3_note.Dots3NoteRMSNorm emu3.Emu3RMSNorm
    ernie4_5.Ernie4_5RMSNorm ernie4_5_moe.Ernie4_5_MoeRMSNorm ernie4_5_vl_moe.Ernie4_5_VLMoeRMSNorm
    eurobert.EuroBertRMSNorm evolla.EvollaRMSNorm exaone4.Exaone4RMSNorm exaone4_5.Exaone4_5_RMSNorm
    exaone_moe.ExaoneMoeRMSNorm falcon_h1.FalconH1RMSNorm falcon_mamba.FalconMambaRMSNorm
    flex_olmo.FlexOlmoRMSNorm flint.FlintRMSNorm glm.GlmRMSNorm glm4.Glm4RMSNorm
    glm4_moe.Glm4MoeRMSNorm glm4_moe_lite.Glm4MoeLiteRMSNorm glm4v.Glm4vRMSNorm
    glm4v_moe.Glm4vMoeRMSNorm glm4v_moe.Glm4vMoeTextRMSNorm glm5_next.Glm5NextRMSNorm
    glm5_next.Glm5NextTextRMSNorm glm_image.GlmImageRMSNorm glm_moe_dsa.GlmMoeDsaRMSNorm
    glm_ocr.GlmOcrRMSNorm gpt_oss.GptOssRMSNorm granite.GraniteRMSNorm
    granite4_vision.Granite4VisionTextRMSNorm granite_docling.GraniteDoclingTextRMSNorm
    granite_swa.GraniteSWARMSNorm granitemoe.GraniteMoeRMSNorm granitemoe_swa.GraniteMoeSWARMSNorm
    granitemoehybrid.GraniteMoeHybridRMSNorm granitemoeshared.GraniteMoeSharedRMSNorm
    helium.HeliumRMSNorm higgs_audio_v2.HiggsAudioV2RMSNorm hunyuan_v1_dense.HunYuanDenseV1RMSNorm
    hunyuan_v1_moe.HunYuanMoEV1RMSNorm hunyuan_vl.HunYuanVLRMSNorm hy_v3.HYV3RMSNorm
    hy_v4.HYV4RMSNorm hy_v4_vl.HYV4VLRMSNorm hyperclovax.HyperCLOVAXRMSNorm idefics.IdeficsRMSNorm
    idefics2.Idefics2RMSNorm idefics3.Idefics3RMSNorm inkling.InklingRMSNorm
    inkling2.Inkling2RMSNorm inkling2_loop.Inkling2LoopRMSNorm internvl.InternVLVisionRMSNorm
    jamba.JambaRMSNorm jetmoe.JetMoeRMSNorm kimi_linear.KimiLinearRMSNorm kolibri1.Kolibri1RMSNorm
    kosmos2_5.Kosmos2_5LayerNorm laguna.LagunaRMSNorm lara_mini.LaraMiniRMSNorm lfm2.Lfm2RMSNorm
    lfm2_moe.Lfm2MoeRMSNorm lfm3.Lfm3RMSNorm lfm3_vl.Lfm3VlVisionRMSNorm
    lighton_ocr.LightOnOcrRMSNorm llama.LlamaRMSNorm longcat_flash.LongcatFlashRMSNorm
    longt5.LongT5LayerNorm mamba.MambaRMSNorm mamba2.Mamba2RMSNorm mellum.MellumRMSNorm
    mimo_v2_flash.MiMoV2FlashRMSNorm minicpm3.MiniCPM3RMSNorm minimax.MiniMaxRMSNorm
    minimax_m2.MiniMaxM2RMSNorm ministral.MinistralRMSNorm ministral3.Ministral3RMSNorm
    mistral.MistralRMSNorm mistral3.Mistral3RMSNorm mistral4.Mistral4RMSNorm
    mistral_large4.MistralLarge4RMSNorm mixtral.MixtralRMSNorm mllama.MllamaTextRMSNorm
    molmo2.Molmo2RMSNorm mt5.MT5LayerNorm muse_glimmer_assistant.MuseGlimmerAssistantRMSNorm
    nemotron_h.NemotronHRMSNorm nemotron_h_omni.NemotronH_Omni_RMSNorm neucodec.NeuCodecRMSNorm
    olmo2.Olmo2RMSNorm olmo3.Olmo3RMSNorm olmo_hybrid.OlmoHybridRMSNorm olmoe.OlmoeRMSNorm
    openai_privacy_filter.OpenAIPrivacyFilterRMSNorm ovis2.Ovis2RMSNorm
    paddleocr_vl.PaddleOCRRMSNorm pe_audio.PeAudioEncoderRMSNorm
    pe_audio_video.PeAudioVideoEncoderRMSNorm pe_video.PeVideoEncoderRMSNorm phi3.Phi3RMSNorm
    phi4_multimodal.Phi4MultimodalRMSNorm pix2struct.Pix2StructLayerNorm pixtral.PixtralRMSNorm
    pop2piano.Pop2PianoLayerNorm qianfan_ocr.QianfanOCRVisionRMSNorm qwen2.Qwen2RMSNorm
    qwen2_5_omni.Qwen2_5OmniRMSNorm qwen2_5_vl.Qwen2_5_VLRMSNorm qwen2_moe.Qwen2MoeRMSNorm
    qwen2_vl.Qwen2VLRMSNorm qwen3.Qwen3RMSNorm qwen3_moe.Qwen3MoeRMSNorm
    qwen3_omni_moe.Qwen3OmniMoeCode2WavRMSNorm qwen3_omni_moe.Qwen3OmniMoeRMSNorm
    qwen3_omni_moe.Qwen3OmniMoeTextRMSNorm qwen3_omni_moe.Qwen3OmniMoeThinkerTextRMSNorm
    qwen3_vl.Qwen3VLTextRMSNorm qwen3_vl_moe.Qwen3VLMoeTextRMSNorm sapiens2.Sapiens2RMSNorm
    seed_oss.SeedOssRMSNorm smollm3.SmolLM3RMSNorm solar_open.SolarOpenRMSNorm
    switch_transformers.SwitchTransformersLayerNorm t5.T5LayerNorm timesfm.TimesFmRMSNorm
    timesfm2_5.TimesFm2_5RMSNorm udop.UdopLayerNorm ultrabert.UltrabertRMSNorm
    ultravbert.UltraVBertRMSNorm umt5.UMT5LayerNorm unlimited_ocr.UnlimitedOcrTextRMSNorm
    vibevoice.VibeVoiceRMSNorm vibevoice_acoustic_tokenizer.VibeVoiceAcousticTokenizerRMSNorm
    vibevoice_asr.VibeVoiceAsrRMSNorm voxtral_realtime.VoxtralRealtimeRMSNorm xcodec2.Xcodec2RMSNorm
    youtu.YoutuRMSNorm zamba.ZambaRMSNorm zamba2.Zamba2RMSNorm zaya.ZayaRMSNorm
""")
#: ... and those that keep it as ``eps``, as torch's does.
_RMS_NORMS_EPS = _transformers("""
    diffusion_gemma.DiffusionGemmaRMSNorm embedding_gemma2.EmbeddingGemma2RMSNorm
    gemma3n.Gemma3nRMSNorm gemma4.Gemma4RMSNorm gemma4_unified.Gemma4UnifiedRMSNorm
    imagegpt.ImageGPTLayerNorm kyutai_speech_to_text.KyutaiSpeechToTextRMSNorm
    llama4.Llama4TextRMSNorm moshi.MoshiRMSNorm muse_glimmer.MuseGlimmerRMSNorm
    muse_spark.MuseSparkRMSNorm neomme.NeoMMERMSNorm
""")
RMS_NORMS = frozenset(_RMS_NORMS_VARIANCE_EPSILON + _RMS_NORMS_EPS)
#: transformers' RMSNorms that scale by ``1 + weight`` (Gemma's, drawn as zeros),
#: otherwise as ``nn.RMSNorm``; each keeps its epsilon as ``eps``.
_OFFSET_RMS_NORMS = _transformers("""
    gemma.GemmaRMSNorm gemma2.Gemma2RMSNorm gemma3.Gemma3RMSNorm minimax_m3_vl.MiniMaxM3VLRMSNorm
    muse_glimmer.MuseGlimmerTextCenteredRMSNorm muse_spark.MuseSparkTextCenteredRMSNorm
    qwen3_5.Qwen3_5RMSNorm qwen3_5_moe.Qwen3_5MoeRMSNorm qwen3_next.Qwen3NextRMSNorm
    qwen4_exp.Qwen4ExpTextRMSNorm recurrent_gemma.RecurrentGemmaRMSNorm step3p7.Step3p7RMSNorm
    t5gemma.T5GemmaRMSNorm t5gemma2.T5Gemma2RMSNorm vaultgemma.VaultGemmaRMSNorm
""")
OFFSET_RMS_NORMS = frozenset(_OFFSET_RMS_NORMS)
#: Each zoo layer's kind.
KINDS = {
    CONV1D: "linear",
    **dict.fromkeys(RMS_NORMS, "rmsnorm"),
    **dict.fromkeys(OFFSET_RMS_NORMS, "rmsnorm_offset"),
}
#: How each keeps its leaves, by native name, where its kind's table does not say.
LEAVES: dict[tuple[str, str], dict[str, Leaf]] = {
    CONV1D: {"weight": Leaf("weight", ("in", "out")), "bias": Leaf("bias")}
}
#: How each draws its leaves at construction, by canonical name, where its kind's
#: default does not say.
INIT: dict[tuple[str, str], dict[str, Initializer]] = {CONV1D: {"weight": Normal(0.0, 0.02), "bias": Zeros()}}
#: Settings a zoo layer keeps under an attribute of its own, by torch's name.
SETTINGS: dict[tuple[str, str], dict[str, str]] = dict.fromkeys(
    _RMS_NORMS_VARIANCE_EPSILON, {"eps": "variance_epsilon"}
)
