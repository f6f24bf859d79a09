# The two entry points of the README. Each creates its own virtual environment first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE=1
export HF_DATASETS_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export MLFLOW_DISABLE_TELEMETRY=true
export RAY_USAGE_STATS_ENABLED=0
export TOKENIZERS_PARALLELISM=false

.PHONY: setup demo test lint

$(BIN)/khabar: pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, pinned: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/khabar

# Label Studio (the review round trip, tests/annotate) in an environment of its own: it pins Django
# and friends, and its SDK would downgrade numpy in .venv. khabar only reads and writes its files;
# the round-trip test starts the server from here and drives it with this environment's SDK.
LS_VENV ?= .venv-ls
LABEL_STUDIO ?= label-studio==1.23.2

$(LS_VENV)/bin/label-studio:
	$(PY) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q $(LABEL_STUDIO)
	touch $@

setup: $(BIN)/khabar $(LS_VENV)/bin/label-studio

demo: setup
	$(BIN)/khabar demo --workdir khabar-demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout 900 tests
	# The notebooks run against a fresh demo folder (they run the demo themselves if it is absent).
	rm -rf .nb-demo
	KHABAR_DEMO_DIR=$(CURDIR)/.nb-demo $(BIN)/python -m pytest -q -p no:cacheprovider --nbmake notebooks
