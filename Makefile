# One command to a result: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[llamacpp,test]'
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default model (SmolLM2-135M-Instruct through llama.cpp).
demo: $(STAMP)
	$(VENV)/bin/widthdepth run --recipe recipes/demo.yaml

# The whole suite. pytest's exit 5 ("no tests collected") counts as a failure.
test: $(STAMP)
	@$(PY) -m pytest -q -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
