# DP3. A newcomer needs two commands: `make up` (run the system) and `make test`.
# Both install what this machine lacks (Debian packages, the .venv) first.
.PHONY: up down add demo test install system-run system-test rabbitmq docker prebuild lint unit bench

PY := .venv/bin
SRC := libs/dp3/src services/scanner/src services/dispatcher/src services/archiver/src services/portal/src services/intake/src field/src

up: system-run rabbitmq install  ## the whole system on this machine, in the foreground
	$(PY)/python deploy/local/stack.py up

down:  ## stop a stack started in the background (make up &)
	$(PY)/python deploy/local/stack.py down

add: install  ## one more instance of a stage beside a running stack: make add SERVICE=archiver
	$(PY)/python deploy/local/stack.py add $(SERVICE)

demo: install  ## drop a sample of the shared corpus into two photographers' folders
	$(PY)/python deploy/local/stack.py demo

test: system-test rabbitmq docker install prebuild lint  ## everything CI runs
	$(PY)/pytest --durations=25

install:  ## .venv from the pinned versions in constraints.txt
	scripts/install-python.sh

system-run:
	scripts/install-system.sh run

system-test:
	scripts/install-system.sh test

rabbitmq:
	scripts/ensure-rabbitmq.sh

docker:  ## a Docker engine for tests/compose (DP3_SKIP_DOCKER=1 leaves those tests out, said out loud)
	@if [ "$${DP3_SKIP_DOCKER:-0}" = 1 ]; then echo "DP3_SKIP_DOCKER=1: the compose stack is not tested"; \
	else scripts/ensure-docker.sh; fi

prebuild: docker install  ## the compose tests' images, built in the background while the other tests run (they run last)
	@if [ "$${DP3_SKIP_DOCKER:-0}" != 1 ]; then \
	  echo "building the compose tests' images in the background (log: /tmp/dp3-compose-prebuild.log)"; \
	  nohup $(PY)/python -m tests.compose.prebuild >/dev/null 2>&1 & \
	fi

lint: install
	$(PY)/ruff check .
	$(PY)/ruff format --check .
	$(PY)/mypy $(SRC) deploy/local deploy/grafana tests benchmarks

unit: install
	$(PY)/pytest tests/unit
