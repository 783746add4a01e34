# DP3: the two commands a newcomer needs are `make up` and `make test`.
.PHONY: install system test lint unit integration

PY := .venv/bin

install:  ## Python environment (.venv) from pinned versions
	scripts/install-python.sh

system:  ## Debian packages and a running RabbitMQ
	scripts/install-system.sh
	scripts/ensure-rabbitmq.sh

lint: install
	$(PY)/ruff check .
	$(PY)/ruff format --check .
	$(PY)/mypy libs/dp3/src services/scanner/src services/dispatcher/src services/archiver/src services/portal/src tests

test: system install lint  ## everything CI runs
	$(PY)/pytest

unit: install
	$(PY)/pytest tests/unit
