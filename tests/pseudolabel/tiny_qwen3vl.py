"""A tiny Qwen3-VL built offline with random weights, saved in the layout ``from_pretrained`` reads,
so the transformers backend runs for real in tests (no model hub here).

Text: hidden 64, 2 layers, 4 heads, 2 KV heads, head_dim 16, M-RoPE sections [4, 2, 2] (sum
head_dim/2). Vision: depth 2, hidden 32, patch 16, spatial merge 2, temporal patch 2. A byte-level
BPE tokenizer trained with ``tokenizers`` on a few lines, with Qwen's special tokens, and a short
chat template; ``Qwen3VLVideoProcessor`` + ``Qwen2VLImageProcessor`` in a ``Qwen3VLProcessor``.
Builds in well under a second; 32 generated tokens take about 0.05-0.2 s on this CPU.
"""
from __future__ import annotations

from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
           "<|video_pad|>"]
# Qwen2Tokenizer's pre-tokenisation, so the tiny tokenizer splits text as Qwen's does.
PRETOKENIZE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
CORPUS = ['{"actions": [{"action": "walking", "confidence": 0.9}]}', '{"action": "running", "confidence": 0.75}',
          "What is the person doing? Answer with JSON only.", "Group the labels that name the same activity."]
# The video item emits a bare <|video_pad|>: the processor expands it into one
# "<t seconds><|vision_start|>...<|vision_end|>" group per pair of frames.
CHAT_TEMPLATE = r"""
{%- for message in messages %}
    {{- '<|im_start|>' + message['role'] + '\n' }}
    {%- if message['content'] is string %}{{- message['content'] }}
    {%- else %}{%- for item in message['content'] %}
        {%- if item['type'] == 'image' %}{{- '<|vision_start|><|image_pad|><|vision_end|>' }}
        {%- elif item['type'] == 'video' %}{{- '<|video_pad|>' }}
        {%- elif item['type'] == 'text' %}{{- item['text'] }}{%- endif %}
    {%- endfor %}{%- endif %}
    {{- '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
""".strip()


def build(folder: Path) -> Path:
    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import (PreTrainedTokenizerFast, Qwen2VLImageProcessor, Qwen3VLConfig,
                              Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor)

    torch.manual_seed(0)
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(PRETOKENIZE), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS * 20, trainer=trainers.BpeTrainer(
        vocab_size=400, min_frequency=1, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        padding_side="left", model_max_length=4096)
    budget = dict(patch_size=16, temporal_patch_size=2, merge_size=2)
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size={"shortest_edge": 32 * 32, "longest_edge": 64 * 64},
                                              image_mean=[0.5] * 3, image_std=[0.5] * 3, **budget),
        video_processor=Qwen3VLVideoProcessor(size={"shortest_edge": 32 * 32, "longest_edge": 64 * 64 * 16},
                                              do_sample_frames=False, cap_pixels_per_frame=False, **budget),
        tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    tid = tokenizer.convert_tokens_to_ids
    config = Qwen3VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 5e6, "mrope_section": [4, 2, 2],
                                          "mrope_interleaved": True},
                         pad_token_id=tid("<|endoftext|>"), bos_token_id=None, eos_token_id=tid("<|im_end|>")),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=64,
                           num_position_embeddings=64, deepstack_visual_indexes=[0, 1]),
        image_token_id=tid("<|image_pad|>"), video_token_id=tid("<|video_pad|>"),
        vision_start_token_id=tid("<|vision_start|>"), vision_end_token_id=tid("<|vision_end|>"),
        tie_word_embeddings=False)
    model = Qwen3VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
