# Every target sets up what it needs: a virtual environment built from pyproject.toml.
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
LAYER_ZIP := dist/telemetry-ext-layer.zip
LAYER ?= $(LAYER_ZIP)
RUNTIME ?= python3.12
ARCH ?= x86_64
INVOKES ?= 10
REPORT ?=

.PHONY: venv test test-unit test-integration simulate package check-layer publish bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -e '.[dev]'
	touch $@

package: venv
	$(VENV_PYTHON) layer/build.py --output $(LAYER_ZIP)

simulate: package
	$(VENV_PYTHON) -m telemetry_ext.simulator --layer $(LAYER_ZIP) \
		--function examples/order_processor --handler app.handler \
		--payloads examples/order_processor/payloads.json --invokes $(INVOKES) \
		$(if $(REPORT),--report $(REPORT))

test: venv
	$(VENV_PYTHON) -m pytest -q

test-unit: venv
	$(VENV_PYTHON) -m pytest -q tests/unit

test-integration: venv
	$(VENV_PYTHON) -m pytest -q tests/integration

check-layer: venv
	$(VENV_PYTHON) -m telemetry_ext.layer_check $(LAYER) --runtime $(RUNTIME) --arch $(ARCH)

publish: package
	AWS=$(abspath $(VENV)/bin/aws) LAYER_ZIP=$(LAYER_ZIP) bash layer/publish.sh

bench: package
	$(VENV_PYTHON) -m telemetry_ext.simulator.bench --layer $(LAYER_ZIP) --output docs/benchmarks.md $(if $(BENCH_JSON),--json $(BENCH_JSON))

clean:
	rm -rf dist build $(VENV) .pytest_cache
