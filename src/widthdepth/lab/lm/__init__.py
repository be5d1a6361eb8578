"""The built-in language model: a small Llama-style decoder that widthdepth trains from scratch on
written-out reasoning (`train.py`, `widthdepth lab train-lm`) in the very prompt formats the text
runner sends (`data.py`), with a byte-level BPE tokenizer trained on those prompts (`tokenizer.py`).
It ships as a transformers folder (`hf:lm`) and as a GGUF of the same weights (`export.py`;
`llamacpp:lm`, `builtin:lm`), so every text path of widthdepth has a model whose width and depth
matter."""
