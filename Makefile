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

train: venv
	$(PY) -m instruments_jax.train --config=$(CONFIG) --workdir=$(WORKDIR)

test: venv
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs
