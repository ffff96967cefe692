# deskprov: `make run` serves, `make test` tests, `make bench` benchmarks.
# Each target creates .venv and installs the project into it when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PHONES ?= 2000

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,pg]"
	touch $@

run: $(STAMP)
	$(BIN)/deskprov serve

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/bootstorm.py --phones $(PHONES)

clean:
	rm -rf $(VENV) var build *.egg-info
