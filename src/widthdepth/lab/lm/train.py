"""Training the built-in LM from scratch: a Llama-style decoder (transformers' own class, so the
folder it writes is a standard one) on the examples of `data.py`, loss on the written answer only.

    widthdepth lab train-lm --out lm/                 # the shipped model: about 25 minutes on 2 cores
    widthdepth lab train-lm --out lm/ --preset gpu    # larger and longer, on a lent GPU

Deterministic for the seed, the step count and the thread count: step s draws its examples from a
generator seeded by (seed, s), and the model's own attempts are sampled at fixed steps with a seeded
generator. Resumable: every `save_every` steps the weights, the optimizer, the schedule and the pool
of own attempts go to ``OUT/.train/state.pt``; rerunning the same command continues from there and
ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.lab.lm.data import Owned, ProblemSource, example, random_example, random_spec
from widthdepth.lab.lm.tokenizer import BOS_ID, EOS_ID, PAD_ID
from widthdepth.specs import stable_int

STATE = ".train/state.pt"
MICRO_BATCH = 8


@dataclass(frozen=True)
class LMTrainConfig:
    steps: int = 1100
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int = 0
    hidden: int = 192
    layers: int = 4
    heads: int = 6
    ffn: int = 512
    vocab_size: int = 512
    context: int = 1024
    own_at: tuple[float, ...] = (0.4, 0.6, 0.8)
    """When (as fractions of the steps) the model's own attempts are sampled for revise/verify/extend."""
    own_count: int = 160
    threads: int = 2
    device: str = "cpu"
    save_every: int = 25


PRESETS = {
    "cpu": LMTrainConfig(),
    "tiny": LMTrainConfig(steps=6, batch_size=4, hidden=48, layers=1, heads=2, ffn=96, vocab_size=320,
                          own_at=(0.5,), own_count=4, save_every=2),
    "gpu": LMTrainConfig(steps=4000, batch_size=128, hidden=256, layers=6, heads=8, ffn=768, device="cuda",
                         own_count=1024),
}
"""``cpu``: the shipped model; ``tiny``: seconds, for tests; ``gpu``: for a lent GPU."""


def lm_config(config: LMTrainConfig, vocab_size: int):  # noqa: ANN201
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=config.hidden, intermediate_size=config.ffn,
                       num_hidden_layers=config.layers, num_attention_heads=config.heads,
                       num_key_value_heads=config.heads, max_position_embeddings=config.context, rms_norm_eps=1e-5,
                       tie_word_embeddings=True, bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID)


def build_tokenizer(config: LMTrainConfig):  # noqa: ANN201
    from widthdepth.lab.lm.tokenizer import prompt_corpus, train_tokenizer

    rng, source = random.Random(config.seed), ProblemSource()
    written = [e.prompt + e.target for e in (random_example(rng, source, []) for _ in range(600))]
    return train_tokenizer(prompt_corpus(per_task=20) + written, vocab_size=config.vocab_size, max_length=config.context)


def batch_tensors(tokenizer, examples, context: int):  # noqa: ANN001, ANN201
    """Input ids, attention mask and labels (-100 outside the target), padded on the right."""
    import torch

    rows = []
    for e in examples:
        prompt = tokenizer(e.prompt, add_special_tokens=False)["input_ids"]
        target = tokenizer(e.target, add_special_tokens=False)["input_ids"] + [EOS_ID]
        ids = (prompt + target)[-context:]
        rows.append((ids, len(ids) - min(len(target), len(ids))))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, start) in enumerate(rows):
        input_ids[r, :len(ids)] = torch.tensor(ids)
        labels[r, start:len(ids)] = torch.tensor(ids[start:])
        mask[r, :len(ids)] = 1
    return input_ids, mask, labels


def own_attempts(model, tokenizer, config: LMTrainConfig, step: int, source: ProblemSource) -> list[Owned]:  # noqa: ANN001
    """The model's attempts at random training problems, sampled at temperature 1 (seeded by the step)."""
    import torch

    rng = random.Random(stable_int("own", config.seed, step))
    torch.manual_seed(stable_int("own-torch", config.seed, step) % 2**31)
    asked = [(spec, rng.getrandbits(32)) for spec in (random_spec(rng) for _ in range(config.own_count))]
    out: list[Owned] = []
    model.eval()
    for start in range(0, len(asked), 32):
        chunk = asked[start:start + 32]
        prompts = [example("attempt", source.problem(spec, seed), rng).prompt for spec, seed in chunk]
        encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        width = max(map(len, encoded))
        ids = torch.tensor([[PAD_ID] * (width - len(e)) + e for e in encoded], device=config.device)
        mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(e) for e in encoded])[:, None]).long()
        with torch.no_grad():
            made = model.generate(ids, attention_mask=mask.to(config.device), do_sample=True, temperature=1.0,
                                  top_p=1.0, top_k=0, max_new_tokens=200, eos_token_id=EOS_ID, pad_token_id=PAD_ID)
        for (spec, seed), row in zip(chunk, made[:, width:].tolist()):
            row = row[:row.index(EOS_ID)] if EOS_ID in row else row
            out.append(Owned(spec, seed, tokenizer.decode(row, skip_special_tokens=True)))
    model.train()
    return out


def _backward(model, tokenizer, examples, config: LMTrainConfig) -> float:  # noqa: ANN001
    """The batch's mean loss per target token, its gradient accumulated over length-sorted micro-batches
    (less padding than one tensor of the longest example)."""
    examples = sorted(examples, key=lambda e: len(e.prompt) + len(e.target))
    chunks = [examples[i:i + MICRO_BATCH] for i in range(0, len(examples), MICRO_BATCH)]
    tensors = [[t.to(config.device) for t in batch_tensors(tokenizer, chunk, config.context)] for chunk in chunks]
    total = sum(int((labels != -100).sum()) for _, _, labels in tensors)  # targets never start at position 0
    mean = 0.0
    for ids, mask, labels in tensors:
        weight = int((labels != -100).sum()) / total
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss * weight
        loss.backward()
        mean += float(loss.detach())
    return mean


def _own_steps(config: LMTrainConfig) -> set[int]:
    return {max(1, round(f * config.steps)) for f in config.own_at}


def _save_state(out: Path, step: int, model, optimizer, schedule, pool, metrics, seconds: float) -> None:  # noqa: ANN001
    import torch

    path = out / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "pool": [asdict(o) for o in pool], "metrics": metrics,
                "seconds": seconds}, partial)
    partial.replace(path)  # atomic: a kill mid-save keeps the previous state


def train_lm(config: LMTrainConfig, out: str | Path,
             on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict:
    """Train (or resume) into the folder `out`; returns the summary also written to training.json."""
    import torch
    from transformers import LlamaForCausalLM

    out = Path(out)
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise WidthdepthError(f"--device {config.device}: no GPU here (torch sees none); use --device cpu")
    check_folder(out, config)
    (out / ".train").mkdir(parents=True, exist_ok=True)
    (out / ".train" / "config.json").write_text(json.dumps(asdict(config), indent=1))
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)  # fixed, so the float order (and the weights) is reproducible
    try:
        tokenizer = build_tokenizer(config)
        tokenizer.save_pretrained(out)
        torch.manual_seed(config.seed)
        model = LlamaForCausalLM(lm_config(config, len(tokenizer))).to(config.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01,
                                      betas=(0.9, 0.98))
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate,
                                                       total_steps=config.steps, pct_start=0.05)
        source, pool, metrics, first, spent = ProblemSource(), [], {}, 1, 0.0
        if (out / STATE).is_file():
            state = torch.load(out / STATE, weights_only=False)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            pool, metrics = [Owned(**o) for o in state["pool"]], state["metrics"]
            first, spent = state["step"] + 1, state["seconds"]
            if on_step:
                on_step(state["step"], metrics)
        started, own_steps = time.perf_counter(), _own_steps(config)
        model.train()
        for step in range(first, config.steps + 1):
            if step in own_steps:
                pool = own_attempts(model, tokenizer, config, step, source)
                metrics["own_correct"] = _own_accuracy(pool, source)
            rng = random.Random(stable_int("lm-batch", config.seed, step))
            examples = [random_example(rng, source, pool) for _ in range(config.batch_size)]
            optimizer.zero_grad(set_to_none=True)
            loss = _backward(model, tokenizer, examples, config)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            metrics["loss"] = 0.9 * metrics.get("loss", float(loss)) + 0.1 * float(loss)
            if step % config.save_every == 0 and step < config.steps:
                _save_state(out, step, model, optimizer, schedule, pool, metrics,
                            spent + time.perf_counter() - started)
            if on_step:
                on_step(step, metrics)
        seconds = round(spent + time.perf_counter() - started, 1)
    finally:
        torch.set_num_threads(threads)
    return _finish(out, model.to("cpu"), config, metrics, seconds)


def _own_accuracy(pool: list[Owned], source: ProblemSource) -> float:
    from widthdepth.lab.lm.data import answer_correct

    return sum(answer_correct(o.spec, source.problem(o.spec, o.seed), o.text) for o in pool) / max(1, len(pool))


def check_folder(out: str | Path, config: LMTrainConfig) -> None:
    """Raise unless `out` is new, or holds an unfinished training run with these very settings."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WidthdepthError(f"--out {out}: is a file; give a folder for the model")
    saved = out / ".train" / "config.json"
    if (out / "training.json").is_file() or ((out / "config.json").is_file() and not saved.is_file()):
        raise WidthdepthError(f"--out {out}: already holds a model; use another folder")
    if saved.is_file():
        previous = json.loads(saved.read_text())
        if previous != json.loads(json.dumps(asdict(config))):
            changed = sorted(k for k in previous if previous[k] != json.loads(json.dumps(asdict(config))).get(k))
            raise WidthdepthError(f"--out {out}: holds a training run with other settings ({', '.join(changed)}); "
                                  "use another folder or the same settings to resume")


def _finish(out: Path, model, config: LMTrainConfig, metrics: dict, seconds: float) -> dict:  # noqa: ANN001
    from widthdepth.lab.lm.export import write_gguf

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bar is the one on screen
    try:
        model.save_pretrained(out, safe_serialization=True)
    finally:
        hf_logging.enable_progress_bar()
    write_gguf(out, out / "lm.gguf")
    summary = {"config": asdict(config), "seconds": seconds, "parameters": model.num_parameters(),
               "final": {k: round(v, 4) for k, v in metrics.items()}}
    (out / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / STATE).unlink(missing_ok=True)
    return summary


def preset_config(name: str, **overrides) -> LMTrainConfig:  # noqa: ANN003
    if name not in PRESETS:
        raise WidthdepthError(f"--preset {name!r}: unknown (valid: {', '.join(PRESETS)})")
    known = {f.name for f in fields(LMTrainConfig)}
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if k in known and v is not None})
