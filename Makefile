# Two entry points do all set-up themselves: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WORKDIR ?= runs/quick
CONFIG ?= quick

.PHONY: venv train test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The sample libraries the config's embedded train mix names, fetched once where absent (data/libraries.py).
train: venv
	$(PY) -m instruments_jax.data.libraries --config=$(CONFIG)
	$(PY) -m instruments_jax.train --config=$(CONFIG) --workdir=$(WORKDIR)

test: venv
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
