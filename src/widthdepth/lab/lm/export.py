"""The built-in LM as a GGUF file, written from its Hugging Face folder with the `gguf` package, so
llama.cpp (and so the batched `llamacpp:` backend and `llama_cpp.server`) runs the same weights and
tokenizer as `hf:` does. Checked: the same token ids, final logits within float noise (F32), the same
greedy text (`tests/test_lm.py`).

    write_gguf("lm/", "lm.gguf")                 # F32; f16=True halves the 2-D weights

llama.cpp's Llama layout differs from transformers' in one place: the rows of the query and key
projections are permuted (rotary pairs interleaved rather than split in halves), as llama.cpp's own
converter does. Its BPE loader needs a merges list even when empty, and its chat template is
applied by llama-cpp-python's Jinja formatter from ``tokenizer.chat_template``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from widthdepth.lab.lm.tokenizer import BOS_ID, EOS_ID, GGUF_PRE, PAD_ID

LAYER_TENSORS = {  # transformers name in model.layers.{i}. -> GGUF name in blk.{i}.
    "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def permute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """Query/key rows from transformers' rotate-half layout to llama.cpp's interleaved one."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_gguf(folder: str | Path, path: str | Path, f16: bool = False, name: str = "widthdepth-lm") -> Path:
    import gguf
    from safetensors.numpy import load_file

    folder, path = Path(folder), Path(path)
    config = json.loads((folder / "config.json").read_text())
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    template = _chat_template(folder)
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    rope = config.get("rope_theta") or config.get("rope_parameters", {}).get("rope_theta", 10000.0)

    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_name(name)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(config["hidden_size"] // heads)
    writer.add_rope_freq_base(float(rope))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)
    _tokenizer(writer, tokenizer, config["vocab_size"], template)

    weights = load_file(str(folder / "model.safetensors"))

    def add(gguf_name: str, array: np.ndarray, rotary_heads: int = 0) -> None:
        array = array.astype(np.float32)
        if rotary_heads:
            array = permute_rotary(array, rotary_heads)
        if f16 and array.ndim == 2:  # norms stay F32
            array = array.astype(np.float16)
        writer.add_tensor(gguf_name, np.ascontiguousarray(array))

    add("token_embd.weight", weights["model.embed_tokens.weight"])
    for i in range(config["num_hidden_layers"]):
        for hf_name, gguf_name in LAYER_TENSORS.items():
            heads_of = {"attn_q.weight": heads, "attn_k.weight": kv_heads}.get(gguf_name, 0)
            add(f"blk.{i}.{gguf_name}", weights[f"model.layers.{i}.{hf_name}"], heads_of)
    add("output_norm.weight", weights["model.norm.weight"])
    if "lm_head.weight" in weights and not config.get("tie_word_embeddings", False):
        add("output.weight", weights["lm_head.weight"])  # tied: llama.cpp reuses token_embd
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _chat_template(folder: Path) -> str:
    """The folder's chat template: a file of its own (transformers 5) or a key of tokenizer_config.json."""
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text()
    return json.loads((folder / "tokenizer_config.json").read_text())["chat_template"]


def _tokenizer(writer, tokenizer: dict, vocab_size: int, template: str) -> None:  # noqa: ANN001
    import gguf

    by_id = {i: token for token, i in tokenizer["model"]["vocab"].items()}
    by_id.update({added["id"]: added["content"] for added in tokenizer["added_tokens"]})
    special = {added["id"] for added in tokenizer["added_tokens"] if added["special"]}
    merges = [" ".join(m) if isinstance(m, list) else m for m in tokenizer["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(GGUF_PRE)
    writer.add_token_list([by_id[i] for i in range(vocab_size)])
    writer.add_token_types([gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
                            for i in range(vocab_size)])
    writer.add_token_merges(merges or ["<pad> <pad>"])  # llama.cpp needs the key; the writer skips empty lists
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_pad_token_id(PAD_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(template)
