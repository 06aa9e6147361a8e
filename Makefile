# Every target bootstraps .venv first; the stamp makes that a no-op once the
# pinned requirements are installed, and redoes it when they change.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.opsbench-installed

.PHONY: venv demo test test-clocks lab bench clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "opsbench needs Python 3.11 or newer (PYTHON=$(PYTHON))")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name opsbench --display-name "opsbench" >/dev/null
	@touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/opsbench demo

# Three workers on two cores: most of a test's time is spent waiting on servers and subprocesses.
# --dist loadscope keeps each module on one worker, so its module fixtures (the demo run, the executed
# notebooks, the standby server) are built once, not once per worker that draws one of its tests.
# Each worker starts its own embedded server and builds its own templates (tests/conftest.py).
TEST_WORKERS ?= 3
test: venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

# The tests whose outcome depends on the date (marker `clock`), replayed at every awkward moment
# of tests/support/clock.py: a year boundary, DST days, a Monday 08:59 UTC, a leap day. CI runs it.
test-clocks: venv
	@set -e; for at in $$(cd tests && ../$(BIN)/python -c 'from support.clock import CLOCK_FIXTURES; print(*CLOCK_FIXTURES)'); do \
	    echo "== clock-sensitive tests at $$at"; \
	    OPSBENCH_TEST_NOW=$$at $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -m clock -q; \
	done

# LAB_ARGS passes options to JupyterLab (e.g. LAB_ARGS="--ip=0.0.0.0 --no-browser");
# as root (a container, a fresh VM) Jupyter refuses to start without --allow-root
LAB_ARGS ?=
lab: venv
	$(BIN)/jupyter lab --notebook-dir=notebooks $$(test "$$(id -u)" = 0 && echo --allow-root) $(LAB_ARGS)

# BENCH_ARGS passes options to the benchmark, e.g. BENCH_ARGS="--parts seed,cli --scales large": only the
# generator's time at large and the CLI's start against a bare Python start (minutes, not hours)
BENCH_ARGS ?=
bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	-$(BIN)/opsbench db down
	rm -rf $(VENV) .opsbench
