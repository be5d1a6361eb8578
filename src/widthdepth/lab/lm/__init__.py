"""The built-in language model (issue 14, in progress): a small Llama-style decoder trained by
widthdepth on written-out reasoning, shipped as a Hugging Face folder (`hf:`) and as a GGUF file of
the same weights (`llamacpp:`). So far: the tokenizer (`tokenizer.py`) and the GGUF export
(`export.py`), checked to give llama.cpp and transformers the same token ids and logits."""
