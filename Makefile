PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test bench clean

$(BIN)/posdoctor: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/posdoctor

demo: venv
	$(BIN)/posdoctor demo

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python bench/host_tps.py --seconds 10 --json

clean:
	rm -rf $(VENV) posdoctor-data .pytest_cache
