"""A writer of a tiny llama-architecture GGUF model with random weights, for serving tests of llama.cpp.

The model is nonsense but complete: two layers, hidden size 64, grouped-query attention, and a GPT-2
byte-level BPE vocabulary (the 256 byte tokens, a few merges, ChatML's special tokens) with a chat
template, all in the file's metadata, so ``llama-server -m tiny.gguf`` loads it, tokenizes prompts and
answers ``/v1/chat/completions``. It is written with the ``gguf`` package (``pip install gguf==0.19.0``).

Run as ``python tests/tiny_gguf.py OUT.gguf`` to write one by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

CONTEXT_LENGTH = 256
EMBEDDING_LENGTH = 64
BLOCK_COUNT = 2
FEED_FORWARD_LENGTH = 128
HEAD_COUNT = 4
HEAD_COUNT_KV = 2
RMS_EPSILON = 1e-5

MERGES = (
    ("h", "e"), ("Ġ", "t"), ("Ġt", "he"), ("i", "n"), ("e", "r"), ("a", "n"), ("o", "n"), ("Ġ", "a"),
    ("r", "e"), ("Ġ", "s"), ("Ġ", "w"), ("o", "u"), ("l", "l"), ("e", "n"), ("Ġ", "h"), ("Ġ", "i"),
    ("i", "s"), ("Ġ", "o"), ("Ġ", "c"), ("a", "t"), ("e", "d"), ("in", "g"), ("o", "r"), ("Ġ", "m"),
    ("e", "s"), ("Ġ", "b"), ("Ġ", "f"), ("a", "r"), ("Ġ", "p"), ("l", "o"), ("Ġ", "d"), ("Ġh", "e"),
    ("he", "llo"), ("l", "lo"), ("Ġ", "he"),
)
"""BPE merges, highest priority first (each merged token is in the vocabulary)."""

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, as Qwen and many others write it."""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map of every byte to a printable character (the byte-level BPE alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    characters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            characters.append(256 + extra)
            extra += 1
    return {byte: chr(character) for byte, character in zip(printable, characters, strict=True)}


def vocabulary() -> tuple[list[str], list[int], list[str]]:
    """Tokens, their GGUF token types and the merges (``"a b"`` strings) of the tiny BPE tokenizer."""
    import gguf

    tokens = sorted(bytes_to_unicode().values())
    types = [int(gguf.TokenType.NORMAL)] * len(tokens)
    for left, right in MERGES:
        merged = left + right
        if merged not in tokens:
            tokens.append(merged)
            types.append(int(gguf.TokenType.NORMAL))
    for special in SPECIAL_TOKENS:
        tokens.append(special)
        types.append(int(gguf.TokenType.CONTROL))
    return tokens, types, [f"{left} {right}" for left, right in MERGES]


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """Write the tiny model to ``path`` (random weights from ``seed``) and return ``path``."""
    import gguf

    tokens, types, merges = vocabulary()
    n_vocab = len(tokens)
    head_dim = EMBEDDING_LENGTH // HEAD_COUNT
    rng = np.random.default_rng(seed)

    def weight(rows: int, columns: int) -> np.ndarray:
        # numpy (rows, columns) is ggml's ne = (columns, rows): columns is the input dimension
        return (rng.standard_normal((rows, columns)) * 0.02).astype(np.float32)

    def ones(size: int) -> np.ndarray:
        return np.ones(size, dtype=np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("pulumi-vllm tiny llama")
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(EMBEDDING_LENGTH)
    writer.add_block_count(BLOCK_COUNT)
    writer.add_feed_forward_length(FEED_FORWARD_LENGTH)
    writer.add_head_count(HEAD_COUNT)
    writer.add_head_count_kv(HEAD_COUNT_KV)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(RMS_EPSILON)
    writer.add_vocab_size(n_vocab)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weight(n_vocab, EMBEDDING_LENGTH))
    writer.add_tensor("output_norm.weight", ones(EMBEDDING_LENGTH))
    writer.add_tensor("output.weight", weight(n_vocab, EMBEDDING_LENGTH))
    for block in range(BLOCK_COUNT):
        prefix = f"blk.{block}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", ones(EMBEDDING_LENGTH))
        writer.add_tensor(f"{prefix}.attn_q.weight", weight(HEAD_COUNT * head_dim, EMBEDDING_LENGTH))
        writer.add_tensor(f"{prefix}.attn_k.weight", weight(HEAD_COUNT_KV * head_dim, EMBEDDING_LENGTH))
        writer.add_tensor(f"{prefix}.attn_v.weight", weight(HEAD_COUNT_KV * head_dim, EMBEDDING_LENGTH))
        writer.add_tensor(f"{prefix}.attn_output.weight", weight(EMBEDDING_LENGTH, HEAD_COUNT * head_dim))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", ones(EMBEDDING_LENGTH))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", weight(FEED_FORWARD_LENGTH, EMBEDDING_LENGTH))
        writer.add_tensor(f"{prefix}.ffn_up.weight", weight(FEED_FORWARD_LENGTH, EMBEDDING_LENGTH))
        writer.add_tensor(f"{prefix}.ffn_down.weight", weight(EMBEDDING_LENGTH, FEED_FORWARD_LENGTH))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/tiny_gguf.py OUT.gguf")
    print(write_tiny_gguf(Path(sys.argv[1])))
