# Bootstrap and entry points. Everything real lives in tasks.py, provisioner/ and tooling/.
#   make bootstrap   host checks, system packages (only if missing), .venv
#   make demo|test|test-faults|drift-fuzz|bench|lab-up|lab-down

VENV ?= .venv
PYTHON ?= python3
HOSTS ?= 1

# command:package pairs; a package is installed only when its command is missing
HOST_TOOLS := systemd-nspawn:systemd-container mmdebstrap:mmdebstrap ip:iproute2 \
              dpkg-scanpackages:dpkg-dev ssh:openssh-client ssh-keygen:openssh-client

export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin

.PHONY: bootstrap host-check host-packages demo test test-faults drift-fuzz bench lab-up lab-down

bootstrap: $(VENV)/.stamp

host-check:
	@if [ "$$(uname -s)" != Linux ]; then \
	  echo "make bootstrap: needs Linux (systemd-nspawn, network namespaces); this is $$(uname -s)" >&2; exit 1; fi
	@if [ "$$(id -u)" != 0 ]; then \
	  echo "make bootstrap: needs root (apt-get, systemd-nspawn, network namespaces); run it as root" >&2; exit 1; fi

host-packages: host-check
	@missing=""; \
	for pair in $(HOST_TOOLS); do \
	  cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || case " $$missing " in *" $$pkg "*) ;; *) missing="$$missing $$pkg";; esac; \
	done; \
	command -v $(PYTHON) >/dev/null 2>&1 || missing="$$missing python3"; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

# Rebuilt when missing or when pyproject.toml is newer than the stamp.
$(VENV)/.stamp: pyproject.toml | host-packages
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -e '.[test]'
	@touch $@

demo: bootstrap
	$(VENV)/bin/invoke demo

# pytest's testpaths (pyproject.toml): tests/unit, tooling/tests, tests/lab; the longer fault cases
# (marked faults_full) run in make test-faults.
test: bootstrap
	$(VENV)/bin/python -m pytest -q -m "not faults_full"

# Every fault of docs/reliability.md injected for real on lab hosts, with the time each case took.
test-faults: bootstrap
	$(VENV)/bin/python -m pytest -q --durations=0 tests/lab/test_fault_fresh_host.py tests/lab/test_faults.py

# Random combinations of three drift catalogue mutations on a lab host (not part of `make test`).
# Combination k uses the seed SEED+k: a failing one runs again with SEED=<its seed> N=1.
SEED ?= $(shell date +%s)
N ?= 10
drift-fuzz: bootstrap
	@echo "drift-fuzz: SEED=$(SEED) N=$(N)"
	DRIFT_FUZZ_SEED=$(SEED) DRIFT_FUZZ_N=$(N) $(VENV)/bin/python -m pytest -q tests/lab/test_drift_fuzz.py

# The peers (ansible-core, pyinfra) are optional deps, installed on first use; `make test` never needs them.
# HOSTS=N adds the scale rows on N fresh lab hosts; BENCH_ARGS e.g. --no-repair, --no-latency, --forks 20.
RUNS ?= 5
BENCH_ARGS ?=
bench: bootstrap
	@$(VENV)/bin/python -c 'import ansible, pyinfra' >/dev/null 2>&1 || $(VENV)/bin/pip install -e '.[test,bench]'
	BENCH_COMMAND="make bench HOSTS=$(HOSTS) RUNS=$(RUNS) BENCH_ARGS='$(BENCH_ARGS)'" \
	  $(VENV)/bin/invoke bench --runs $(RUNS) --hosts $(HOSTS) $(BENCH_ARGS)

lab-up: bootstrap
	$(VENV)/bin/invoke lab.up --hosts $(HOSTS)

lab-down: bootstrap
	$(VENV)/bin/invoke lab.down
