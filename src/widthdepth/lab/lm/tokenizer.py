"""The built-in LM's tokenizer: byte-level BPE, trained on the text the runner actually sends.

Every byte has a token (nothing a user writes vanishes), digits are always single tokens (a number
is read digit by digit, as it is computed), and merges learned from the runner's prompts and
written solutions make the fixed English of the prompts short. Text is split before BPE by the
same regular expression llama.cpp uses for its ``qwen2`` pre-tokenizer, so the GGUF export
(`export.py`) tokenizes exactly as transformers does (tested on every prompt kind).

    tokenizer = train_tokenizer(corpus, vocab_size=512)
    tokenizer.save_pretrained("lm/")       # a standard folder: AutoTokenizer.from_pretrained("lm/")
"""

from __future__ import annotations

from collections.abc import Iterable

SPECIALS = ("<pad>", "<s>", "</s>")
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
         r"|\s+(?!\S)|\s+")
"""llama.cpp's qwen2 pre-tokenizer regex: letters in words, each digit alone, punctuation runs."""
GGUF_PRE = "qwen2"
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
                 "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
"""Roles as plain text markers; the template writes the BOS itself (llama-cpp-python's chat formatter
tokenizes the rendered text without adding one)."""


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 512, max_length: int = 1024):  # noqa: ANN201
    """A `PreTrainedTokenizerFast` whose merges are learned from `corpus` (deterministic for a corpus)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), min_frequency=2)
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in SPECIALS])
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                             special_tokens=[("<s>", BOS_ID)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", chat_template=CHAT_TEMPLATE,
                                   clean_up_tokenization_spaces=False, model_max_length=max_length)


def prompt_corpus(per_task: int = 40, seed: int = 0) -> list[str]:
    """What the runner sends and what a solution looks like, for every built-in family: attempt,
    revise and verify prompts (chat, rendered by the template, and few-shot) and written solutions."""
    from widthdepth.tasks import load_task
    from widthdepth.tasks.prompts import attempt_prompt, revise_prompt, verify_prompt

    texts = []
    for spec in ("chain:L=1", "chain:L=2", "chain:L=4", "chain:L=6", "chain:L=8", "search", "search:p=29",
                 "search:kind=subset,n=6", "search:kind=subset,n=10", "mix:L=4,n=8", "mix:L=2,kind=modeq,p=13"):
        family = load_task(spec)
        demos = family.demonstrations(2)
        for i, problem in enumerate(family.problems(per_task, seed)):
            demo = demos[i % 2]
            for style in ("chat", "fewshot"):
                for prompt in (attempt_prompt(family, problem, style), revise_prompt(family, problem, demo.solution, style),
                               verify_prompt(family, problem, demo.solution, "1", style)):
                    texts.append(prompt.text if prompt.text is not None else
                                 "\n".join(f"<|{role}|>\n{content}" for role, content in prompt.messages or ()))
            texts += [demo.solution, demo.flawed_solution or ""]
    return texts
