# Quick start:  make demo   (set up .venv, predict on a bundled example)
#               make test   (run the test suite)
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
EXAMPLE ?= src/ser/examples/speech_example.wav

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU wheel of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[train,app,api,whisper,dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/ser predict $(EXAMPLE)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) benchmarks/features.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
