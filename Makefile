# meetops — developer commands. `make test` is the one test command; CI runs it.
GO        ?= go
PKGS      ?= ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/meetops/meetops/internal/version.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2

.PHONY: test bench lint build clean

## test: every test, Redis ones included (a private redis-server per package)
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

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

clean:
	rm -rf bin/
