# meetops — developer commands. `make test` is the one test command; CI runs it.
GO        ?= go
PKGS      ?= ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/meetops/meetops/internal/version.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2

.PHONY: test bench lint build clean compose-check deps-check

## test: every test, Redis ones included (a private redis-server per package),
## then the reliability suite's summary table (go test hides the output of
## packages that pass)
RELIABILITY_REPORT := $(shell mktemp -u /tmp/meetops-reliability-XXXXXX.txt)
test:
	MEETOPS_RELIABILITY_REPORT=$(RELIABILITY_REPORT) $(GO) test -race -count=1 -timeout 15m $(PKGS); \
	status=$$?; \
	if [ -f $(RELIABILITY_REPORT) ]; then cat $(RELIABILITY_REPORT); rm -f $(RELIABILITY_REPORT); fi; \
	exit $$status

## conformance: cloudsim and apiclient checked against Huawei's official Go SDK
## (conformance/ is a module of its own, so `make test` never downloads the SDK)
.PHONY: conformance
conformance:
	cd conformance && $(GO) test -count=1 ./...

## bench: side-by-side benchmarks against plain asynq, printed as ratios
bench:
	$(GO) run ./cmd/bench

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)

## build: static binaries into bin/
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

## compose-check: docker-compose.yml valid (default and dev profiles, with
## docker-compose), and the Dockerfile builds with go.mod's Go and
## `make build`'s flags. (That .env.example and the README list every worker
## variable is a Go test over the settings table, in internal/worker.)
COMPOSE   ?= docker-compose
compose-check:
	@command -v $(COMPOSE) >/dev/null || { echo "compose-check: $(COMPOSE) not found (apt-get install docker-compose)"; exit 1; }
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cp docker-compose.yml "$$tmp/"; dc="$(COMPOSE) -f $$tmp/docker-compose.yml"; \
	cp .env.example "$$tmp/.env"; \
	$$dc config -q; \
	test "$$($$dc config --profiles)" = dev || { echo "compose-check: want one profile, dev"; exit 1; }; \
	$$dc config | grep -q "DASHBOARD_INSECURE: '0'" || { echo "compose-check: the worker must not serve the dashboard without auth by default (DASHBOARD_INSECURE=0)"; exit 1; }; \
	$$dc config | grep -q "API_ADDR: 0.0.0.0:8090" || { echo "compose-check: the api service must listen on 0.0.0.0:8090 in its container"; exit 1; }; \
	sed 's/^#dev //' .env.example > "$$tmp/.env"; \
	$$dc --profile dev config -q; \
	$$dc --profile dev config | grep -q 'RTC_ENDPOINT: http://cloudsim:9080' || { echo "compose-check: dev .env does not point the worker at cloudsim"; exit 1; }; \
	$$dc --profile dev config | grep -q "DASHBOARD_INSECURE: '1'" || { echo "compose-check: the dev .env must opt the worker's dashboard out of auth explicitly (DASHBOARD_INSECURE=1)"; exit 1; }; \
	$$dc --profile dev config | grep -q "API_TOKENS: dev admin sha256:" || { echo "compose-check: the dev .env must give the api service its dev token (API_TOKENS)"; exit 1; }; \
	echo "compose-check: docker-compose.yml valid (default and dev profiles)"
	@gomod=$$(awk '$$1 == "go" {print $$2}' go.mod); \
	grep -qx "ARG GO_VERSION=$$gomod" Dockerfile || { echo "compose-check: Dockerfile's ARG GO_VERSION must be go.mod's go $$gomod"; exit 1; }
	@grep -qF 'CGO_ENABLED=0 go build -trimpath -ldflags "$(patsubst %.Version=$(VERSION),%.Version=$${VERSION},$(LDFLAGS))"' Dockerfile || \
	  { echo "compose-check: Dockerfile's go build must use make build's flags: CGO_ENABLED=0 -trimpath -ldflags \"$(LDFLAGS)\" (version as \$${VERSION})"; exit 1; }
	@echo "compose-check: ok"

clean:
	rm -rf bin/

## deps-check: the producer side (the root package and cmd/enqueue) links
## nothing of the worker: not the upstream client, the simulator, zerolog,
## Prometheus or the dashboard. A service that only enqueues pulls in asynq,
## go-redis and the task model. The HTTP API (cmd/api) is on the producer
## side too: the same rule, but for Prometheus, which serves its /metrics
## (with a registry of its own, not the worker's collectors).
PRODUCERS     := . ./cmd/enqueue
WORKER_ONLY   := github.com/meetops/meetops/internal/(apiclient|cloudsim|executor)|github.com/rs/zerolog|github.com/prometheus/client_golang|github.com/hibiken/asynqmon
API_PRODUCERS := ./cmd/api
API_FORBIDDEN := github.com/meetops/meetops/internal/(apiclient|cloudsim|executor|metrics|worker)|github.com/rs/zerolog|github.com/hibiken/asynqmon
deps-check:
	@set -e; check() { \
	  bad=$$($(GO) list -deps $$1 | grep -E "^($$2)(/|$$)" || true); \
	  if [ -n "$$bad" ]; then echo "deps-check: $$1 links worker-only packages:"; echo "$$bad"; exit 1; fi; \
	  echo "deps-check: $$1: $$($(GO) list -deps $$1 | wc -l) packages, none worker-only"; \
	}; \
	for p in $(PRODUCERS); do check $$p '$(WORKER_ONLY)'; done; \
	for p in $(API_PRODUCERS); do check $$p '$(API_FORBIDDEN)'; done

## fuzz: run each native fuzz target for FUZZTIME (default 60s); their seed
## corpora (testdata/fuzz/) also run in `make test`. A crash is saved in the
## package's testdata/fuzz/<Target>/ and replays in `make test` until fixed.
FUZZTIME ?= 60s
FUZZ_TARGETS := ./internal/tasks:FuzzDecode ./internal/tasks:FuzzResultJSON ./internal/apiclient:FuzzSignVerify \
                ./internal/bulk:FuzzJSONL ./internal/bulk:FuzzCSV ./internal/bulk:FuzzFastPathAgrees \
                ./internal/termtext:FuzzEscape ./internal/api:FuzzDecode
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg; \
	done
