# Two commands matter: `make demo` and `make test`. Both run `make setup` first.
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.hilkit-installed
SRC_DEPS := pyproject.toml CMakeLists.txt $(wildcard host/*.c host/qemu_plugin/*.[ch] kernels_c/*.h)
PYTEST_ARGS ?=

.PHONY: setup system-packages demo test clean
setup: system-packages $(STAMP)

system-packages:
	@bash scripts/setup-system.sh

$(STAMP): $(SRC_DEPS)
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/hilkit demo

test: setup
	$(VPY) -m pytest -q --hil-board all $(PYTEST_ARGS)

clean:
	rm -rf build out .pytest_cache
