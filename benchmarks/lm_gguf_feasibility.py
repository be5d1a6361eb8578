"""Feasibility check for issue 14 (a built-in language model in tokens), measured 2026-12-02: a tiny
Llama-style model with a character-level byte-level BPE tokenizer (no merges) written both as a
Hugging Face folder and, with the `gguf` package, as a GGUF file that llama-cpp-python 0.3.36 loads;
the two give identical token ids and the same greedy continuation (F32 GGUF and KV cache: final
logits within 1.7e-5). Random weights: this checks the format, not a trained model. Findings and
pitfalls: ../shared/LAB-NOTES.md ("A tiny LM as an HF folder and a GGUF").

    .venv/bin/python benchmarks/lm_gguf_feasibility.py [--f16] [--pre default|gpt-2|qwen2|llama3] [--tied] [--out DIR]
"""

import argparse, ctypes, json, os, shutil, sys, tempfile, time

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "widthdepth-lm-gguf"))
ap.add_argument("--f16", action="store_true", help="store 2-D weights as F16 in GGUF")
ap.add_argument("--pre", default="default", help="tokenizer.ggml.pre value")
ap.add_argument("--kv", type=int, default=2, help="num_key_value_heads (4 = MHA, 2 = GQA)")
ap.add_argument("--tied", action="store_true", help="tie_word_embeddings")
ap.add_argument("--kv-f16", action="store_true", help="keep llama.cpp default F16 KV cache")
ap.add_argument("--no-permute", action="store_true", help="negative control: skip Q/K permutation")
ap.add_argument("--std", type=float, default=0.15, help="init std (bigger -> sharper logits)")
args = ap.parse_args()

torch.set_num_threads(2)
torch.manual_seed(0)
T0 = time.time()
OUT = args.out
HF_DIR = os.path.join(OUT, "hf")
GGUF_PATH = os.path.join(OUT, "model-f16.gguf" if args.f16 else "model-f32.gguf")
shutil.rmtree(HF_DIR, ignore_errors=True)
os.makedirs(HF_DIR, exist_ok=True)

# ----------------------------------------------------------------------------
# 1. Tokenizer: byte-level BPE with NO merges == character level.
# ----------------------------------------------------------------------------
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors, AddedToken
from transformers import PreTrainedTokenizerFast, AutoTokenizer


def bytes_to_unicode():
    """GPT-2 byte -> printable unicode char map (same as HF / llama.cpp use)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


B2U = bytes_to_unicode()
SPECIALS = ["<pad>", "<s>", "</s>"]            # ids 0, 1, 2
ALPHABET = ["\n"] + [chr(i) for i in range(32, 127)]  # newline + printable ASCII (95)
vocab = {s: i for i, s in enumerate(SPECIALS)}
for ch in ALPHABET:
    vocab[B2U[ord(ch)]] = len(vocab)              # ' ' -> 'Ġ', '\n' -> 'Ċ'
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
V = len(vocab)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)

tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=None, fuse_unk=False, byte_fallback=False))
tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
tk.decoder = decoders.ByteLevel()
tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
tk.post_processor = processors.TemplateProcessing(
    single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS_ID)])
hf_tok = PreTrainedTokenizerFast(
    tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
    chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False, model_max_length=1024)
# save_jinja_files=False -> chat_template goes into tokenizer_config.json (not chat_template.jinja)
hf_tok.save_pretrained(HF_DIR, save_jinja_files=False)

# ----------------------------------------------------------------------------
# HF model (random init), saved as safetensors
# ----------------------------------------------------------------------------
from transformers import LlamaConfig, LlamaForCausalLM, AutoModelForCausalLM

cfg = LlamaConfig(
    vocab_size=V, hidden_size=192, intermediate_size=512, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=args.kv, max_position_embeddings=1024,
    rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu", attention_bias=False, mlp_bias=False,
    tie_word_embeddings=args.tied, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
    torch_dtype="float32",
)
model = LlamaForCausalLM(cfg)
with torch.no_grad():  # sharper random logits, so greedy comparisons are meaningful
    for n, p in model.named_parameters():
        if "norm" in n:
            p.copy_(1.0 + 0.1 * torch.randn_like(p))   # non-trivial norm weights (catch misuse)
        else:
            p.normal_(0.0, args.std)
model.save_pretrained(HF_DIR, safe_serialization=True)
n_params = sum(p.numel() for p in model.parameters())
print(f"[hf] saved {HF_DIR}: {sorted(os.listdir(HF_DIR))}, params={n_params/1e6:.2f}M, vocab={V}")

# ----------------------------------------------------------------------------
# 2. GGUF writer
# ----------------------------------------------------------------------------
import gguf
from safetensors.torch import load_file


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Same as convert_hf_to_gguf.LlamaModel.permute: HF rotate_half (NeoX) layout
    -> llama.cpp interleaved (GPT-J style) rope layout. Rows = n_head*head_dim."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


def write_gguf(hf_dir, path, f16):
    c = json.load(open(os.path.join(hf_dir, "config.json")))
    tj = json.load(open(os.path.join(hf_dir, "tokenizer.json")))
    tc = json.load(open(os.path.join(hf_dir, "tokenizer_config.json")))
    sd = load_file(os.path.join(hf_dir, "model.safetensors"))
    n_head, n_kv = c["num_attention_heads"], c["num_key_value_heads"]
    head_dim = c["hidden_size"] // n_head

    w = gguf.GGUFWriter(path, arch="llama")           # writes general.architecture = "llama"
    w.add_name("charllama-proto")                     # general.name
    w.add_context_length(c["max_position_embeddings"])    # llama.context_length
    w.add_embedding_length(c["hidden_size"])              # llama.embedding_length
    w.add_block_count(c["num_hidden_layers"])             # llama.block_count
    w.add_feed_forward_length(c["intermediate_size"])     # llama.feed_forward_length
    w.add_head_count(n_head)                              # llama.attention.head_count
    w.add_head_count_kv(n_kv)                             # llama.attention.head_count_kv
    w.add_rope_dimension_count(head_dim)                  # llama.rope.dimension_count
    w.add_rope_freq_base(float(c.get("rope_theta") or c["rope_parameters"]["rope_theta"]))  # llama.rope.freq_base
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])           # llama.attention.layer_norm_rms_epsilon
    w.add_vocab_size(c["vocab_size"])                     # llama.vocab_size
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if f16 else gguf.LlamaFileType.ALL_F32)  # general.file_type

    # --- tokenizer (ids are positions in the list; must cover 0..V-1 exactly) ---
    id2tok = {i: t for t, i in tj["model"]["vocab"].items()}
    for at in tj["added_tokens"]:
        id2tok[at["id"]] = at["content"]
    special_ids = {at["id"] for at in tj["added_tokens"] if at["special"]}
    tokens = [id2tok[i] for i in range(c["vocab_size"])]
    types = [gguf.TokenType.CONTROL if i in special_ids else gguf.TokenType.NORMAL for i in range(len(tokens))]
    w.add_tokenizer_model("gpt2")                         # tokenizer.ggml.model  (byte-level BPE)
    w.add_tokenizer_pre(args.pre)                         # tokenizer.ggml.pre
    w.add_token_list(tokens)                              # tokenizer.ggml.tokens (byte-level strings: 'Ġ' = space, 'Ċ' = \n)
    w.add_token_types(types)                              # tokenizer.ggml.token_type
    # llama.cpp REQUIRES tokenizer.ggml.merges for gpt2 models ("cannot find tokenizer merges"),
    # and GGUFWriter silently skips empty arrays -> write ONE dummy merge that can never fire
    # (BPE symbols start as single chars, so a multi-char left side never exists without a prior merge).
    merges = tj["model"]["merges"] or ["<pad> <pad>"]
    merges = [" ".join(m) if isinstance(m, list) else m for m in merges]
    w.add_token_merges(merges)                            # tokenizer.ggml.merges
    w.add_bos_token_id(BOS_ID)                            # tokenizer.ggml.bos_token_id
    w.add_eos_token_id(EOS_ID)                            # tokenizer.ggml.eos_token_id
    w.add_pad_token_id(PAD_ID)                            # tokenizer.ggml.padding_token_id
    w.add_add_bos_token(True)                             # tokenizer.ggml.add_bos_token
    w.add_add_eos_token(False)                            # tokenizer.ggml.add_eos_token
    w.add_chat_template(tc["chat_template"])              # tokenizer.chat_template

    # --- tensors: numpy in PyTorch (out, in) order; GGUFWriter reverses dims itself ---
    def cvt(name, t, permute_heads=None):
        a = t.float().numpy()
        if permute_heads is not None and not args.no_permute:
            a = permute_qk(a, permute_heads)
        if f16 and a.ndim == 2:
            a = a.astype(np.float16)          # 1-D norms must stay F32
        w.add_tensor(name, np.ascontiguousarray(a))

    cvt("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        cvt(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        cvt(f"blk.{i}.attn_q.weight", sd[p + "self_attn.q_proj.weight"], n_head)
        cvt(f"blk.{i}.attn_k.weight", sd[p + "self_attn.k_proj.weight"], n_kv)
        cvt(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        cvt(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        cvt(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        cvt(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        cvt(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        cvt(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    cvt("output_norm.weight", sd["model.norm.weight"])
    if "lm_head.weight" in sd and not c.get("tie_word_embeddings", False):
        cvt("output.weight", sd["lm_head.weight"])  # omitted when tied: llama.cpp reuses token_embd

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


write_gguf(HF_DIR, GGUF_PATH, args.f16)
print(f"[gguf] wrote {GGUF_PATH} ({os.path.getsize(GGUF_PATH)/1e6:.2f} MB), f16={args.f16}, pre={args.pre}")
print(f"[hf] config: kv_heads={args.kv} tied={args.tied}; tokenizer_config has chat_template:",
      "chat_template" in json.load(open(os.path.join(HF_DIR, "tokenizer_config.json"))))

# ----------------------------------------------------------------------------
# Load both sides fresh from disk
# ----------------------------------------------------------------------------
from llama_cpp import Llama
import llama_cpp

tok = AutoTokenizer.from_pretrained(HF_DIR)
hf = AutoModelForCausalLM.from_pretrained(HF_DIR, dtype=torch.float32).eval()
llm = Llama(model_path=GGUF_PATH, n_ctx=256, n_batch=256, logits_all=True, n_threads=2,
            verbose=False, seed=0,
            # llama.cpp's default KV cache is F16 -> ~1e-2 logit noise; F32 cache gives ~1e-5
            **({} if args.kv_f16 else dict(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)))
print(f"[load] AutoTokenizer={type(tok).__name__}; llama.cpp n_vocab={llm.n_vocab()} "
      f"bos={llm.token_bos()} eos={llm.token_eos()}")

# ----------------------------------------------------------------------------
# Check 1: tokenization equality + round trip
# ----------------------------------------------------------------------------
TEXTS = [
    "Hello, world!",
    "  two  spaces\nnew line\n\n",
    "12+34=46; (7*8)-9/3 = 53.0",
    "a . b , c ? d ! e's \"q\" [x]:y",
    " leading space",
    "don't stop 'til it's done",
    "<s>special</s> inside text",
    "~`@#$%^&_{}|\\<>",
]


def llama_detok_capi(ids):
    """llama.cpp's own llama_detokenize (applies clean_spaces if the vocab says so)."""
    arr = (llama_cpp.llama_token * len(ids))(*ids)
    buf = ctypes.create_string_buffer(4096)
    n = llama_cpp.llama_detokenize(llm._model.vocab, arr, len(ids), buf, 4096, False, False)
    return buf.raw[:n].decode()


tok_ok = True
for t in TEXTS:
    h_ids = tok(t)["input_ids"]
    l_ids = llm.tokenize(t.encode(), add_bos=True, special=True)
    h_nob = tok(t, add_special_tokens=False)["input_ids"]
    l_nob = llm.tokenize(t.encode(), add_bos=False, special=True)
    same = h_ids == l_ids and h_nob == l_nob
    hf_dec = tok.decode(h_nob)
    ll_dec = llm.detokenize(l_nob, special=True).decode()
    capi = llama_detok_capi(l_nob)
    # decode with BOS in front (llama-cpp-python strips a leading ' ' after BOS!)
    ll_dec_bos = llm.detokenize(l_ids).decode()
    rt = hf_dec == t and ll_dec == t
    tok_ok &= same and rt
    print(f"[tok] {t!r}: ids_equal={same} len={len(h_ids)} hf_rt={hf_dec == t} llama_rt={ll_dec == t} "
          f"capi_detok_rt={capi == t} llama_detok_with_bos_rt={ll_dec_bos == t}")
    if not same:
        print("   hf:", h_ids, "\n   ll:", l_ids)
    if capi != t:
        print(f"   llama_detokenize C API gave {capi!r}")
    if ll_dec_bos != t:
        print(f"   Llama.detokenize([bos]+ids) gave {ll_dec_bos!r}")
print("[tok] ALL EQUAL + ROUND TRIP:", tok_ok)
print("[tok] first ids for 'Hi 1\\n':", tok("Hi 1\n")["input_ids"])

# ----------------------------------------------------------------------------
# Check 3: logits + greedy continuation equality
# ----------------------------------------------------------------------------
prompt = "Q: what is 12+7?\nA: 19.\nQ: and (3*4)-2?\nA:"
ids = tok(prompt)["input_ids"]
assert ids == llm.tokenize(prompt.encode(), add_bos=True, special=True)

with torch.no_grad():
    hf_logits = hf(torch.tensor([ids])).logits[0].numpy()      # [T, V]
llm.reset()
llm.eval(ids)
ll_logits = np.array(llm.scores[: len(ids)], dtype=np.float32)  # logits_all=True -> every position
d_last = np.abs(hf_logits[-1] - ll_logits[-1]).max()
d_all = np.abs(hf_logits - ll_logits).max()
srt = np.sort(hf_logits[-1])
print(f"[logits] T={len(ids)} max|diff| last={d_last:.3e} all-positions={d_all:.3e}; "
      f"last logits range [{srt[0]:.2f},{srt[-1]:.2f}] top1-top2 margin={srt[-1]-srt[-2]:.3f}; "
      f"argmax equal at all positions: {(hf_logits.argmax(-1) == ll_logits.argmax(-1)).all()}")

N = 20
with torch.no_grad():
    hf_gen = hf.generate(torch.tensor([ids]), max_new_tokens=N, do_sample=False,
                         pad_token_id=PAD_ID, eos_token_id=None)[0, len(ids):].tolist()
# manual greedy on llama.cpp side (no sampler params involved), also record margins
llm.reset()
llm.eval(ids)
ll_gen, margins = [], []
for _ in range(N):
    lg = np.array(llm.scores[llm.n_tokens - 1])
    s = np.sort(lg)
    margins.append(s[-1] - s[-2])
    nt = int(lg.argmax())
    ll_gen.append(nt)
    llm.eval([nt])
# and via llama-cpp-python's sampler API with temp=0 (greedy)
llm.reset()
smp_gen = []
for t_ in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
    smp_gen.append(t_)
    if len(smp_gen) == N:
        break
print(f"[greedy] hf      : {hf_gen} -> {tok.decode(hf_gen)!r}")
print(f"[greedy] llama   : {ll_gen}")
print(f"[greedy] llama(generate temp=0): {smp_gen}")
print(f"[greedy] equal={hf_gen == ll_gen == smp_gen}; min top1-top2 margin along path={min(margins):.3f}")

# ----------------------------------------------------------------------------
# Check 4: chat template
# ----------------------------------------------------------------------------
msgs = [{"role": "user", "content": "hi, 2+2?"}]
md_tmpl = llm.metadata.get("tokenizer.chat_template")
print(f"[chat] metadata template == HF template: {md_tmpl == tok.chat_template}; "
      f"llm.chat_format={llm.chat_format!r}")
hf_chat_text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
_ct = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
hf_chat_ids = list(_ct["input_ids"] if hasattr(_ct, "keys") else _ct)
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
jf = Jinja2ChatFormatter(template=md_tmpl, eos_token="</s>", bos_token="<s>", stop_token_ids=[EOS_ID])
ll_chat_text = jf(messages=msgs).prompt
ll_chat_ids = llm.tokenize(ll_chat_text.encode(), add_bos=False, special=True)  # what the handler does (added_special=True)
print(f"[chat] HF text {hf_chat_text!r}\n[chat] llama-cpp-python Jinja2 text {ll_chat_text!r}")
print(f"[chat] text equal={hf_chat_text == ll_chat_text}; ids equal={hf_chat_ids == ll_chat_ids}; "
      f"single BOS: {ll_chat_ids[:2]}")
# Capture the token ids create_chat_completion actually feeds the model
seen = {}
orig_create_completion = llm.create_completion
def spy(prompt, **kw):
    seen["prompt"] = prompt
    return orig_create_completion(prompt, **kw)
llm.create_completion = spy
resp = llm.create_chat_completion(messages=msgs, max_tokens=5, temperature=0.0)
print(f"[chat] create_chat_completion prompt ids == HF apply_chat_template ids: {seen.get('prompt') == hf_chat_ids}; "
      f"reply={resp['choices'][0]['message']['content']!r}")
# llama.cpp's C++ template engine (llama_chat_apply_template) only knows built-in templates
chat = (llama_cpp.llama_chat_message * 1)(llama_cpp.llama_chat_message(b"user", b"hi, 2+2?"))
buf = ctypes.create_string_buffer(1024)
r = llama_cpp.llama_chat_apply_template(md_tmpl.encode(), chat, 1, True, buf, 1024)
print(f"[chat] C API llama_chat_apply_template(custom template) -> {r} "
      f"{'(unsupported)' if r < 0 else repr(buf.raw[:r].decode())}")

print(f"[done] {time.time() - T0:.1f}s wall")
