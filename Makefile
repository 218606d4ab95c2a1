# tokbench: `make test` runs the test suite, `make demo` a small offline benchmark.
# Both create or update .venv on a fresh machine (scripts/install.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export PYTHONHASHSEED := 0

.PHONY: install install-demo test test-slow quick demo lint typecheck clean

install:
	@VENV=$(VENV) bash scripts/install.sh

# The demo needs less: the classic codecs' packages, no test tools, SNAC or NeMo (a full
# install from `make test` serves it too).
install-demo:
	@VENV=$(VENV) TOKBENCH_PROFILE=demo bash scripts/install.sh

# The suite without the tests marked slow (under 10 min on 2 cores); CI runs both targets.
test: install
	$(PY) -m pytest -q -m "not slow" tests

# The slow end-to-end tests (runs, kills, long inputs, suites): about 7 min on 2 cores.
test-slow: install
	$(PY) -m pytest -q -m slow tests

quick: test

# The ground truth, mu-law and the classic codecs (no weights: Opus, Codec2 and AMR-NB curves),
# as one matrix run: one process, so models load and notices are said once; a finished run is
# answered from its folder.
DEMO_TOKENIZERS := identity,mulaw,opus-6kbps,opus-12kbps,opus-24kbps,codec2-700c,codec2-3200,amrnb-4.75kbps,amrnb-12.2kbps
demo: install-demo
	$(VENV)/bin/tokbench run --tokenizer $(DEMO_TOKENIZERS) --task recon --dataset sample --out results/demo --set keep_audio=2
	$(VENV)/bin/tokbench report --results results/demo --task recon
	$(VENV)/bin/tokbench leaderboard --results results/demo --out leaderboard/site

lint: install
	$(VENV)/bin/ruff check .
	PY=$(PY) bash scripts/typecheck.sh

typecheck: install
	PY=$(PY) bash scripts/typecheck.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
