# One command to a result: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# llama-cpp-python has no wheel on PyPI for this platform: it is built once from source and the wheel
# is kept in WHEELS, so later fresh venvs (CI, `make clean`) install it in seconds. On x86-64 the build
# is portable (AVX2/FMA, no AVX-512, no AMX): a native build emits AMX tile instructions on CPUs that
# advertise them, and those die with SIGILL in VMs that do not grant AMX to the process.
LLAMA_CPP_VERSION := 0.3.36
ARCH := $(shell uname -m)
WHEELS := $(HOME)/.cache/widthdepth/wheels/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(ARCH)-portable
LLAMA_CMAKE_ARGS_x86_64 := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_CMAKE_ARGS := $(LLAMA_CMAKE_ARGS_$(ARCH))

# torch is installed first and pinned: a CPU wheel of 2.13.0 lies on this platform's disk, while an
# unpinned torch pulls a multi-GB CUDA build (pyproject keeps torch>=2.2 for users elsewhere).

.PHONY: demo demo-llm test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install torch==2.13.0
	@if ! ls $(WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_CPP_VERSION) from source once (several minutes; kept in $(WHEELS))"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --quiet --no-deps --no-cache-dir -w $(WHEELS) \
	    llama-cpp-python==$(LLAMA_CPP_VERSION); fi
	$(PY) -m pip install --find-links $(WHEELS) llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(PY) -m pip install --find-links $(WHEELS) -e '.[llamacpp,hf,ray,test]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default: the quick study on the built-in latent reasoner.
demo: $(STAMP)
	$(VENV)/bin/widthdepth study --preset quick --out runs/study

# The same study in tokens: on widthdepth's own small language model (builtin:lm, through llama.cpp).
# The same kind of run on SmolLM2-135M: widthdepth run --recipe recipes/demo.yaml (about 10 minutes).
demo-llm: $(STAMP)
	$(VENV)/bin/widthdepth study --model builtin:lm --preset quick --out runs/study-lm

# The whole suite. pytest's exit 5 ("no tests collected") counts as a failure.
test: $(STAMP)
	@$(PY) -m pytest -q -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
