# meetops image: the worker (entrypoint), plus api, enqueue and cloudsim.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t meetops .
#   docker run --rm --env-file .env -p 127.0.0.1:8080:8080 meetops
#   docker run --rm --entrypoint api -e API_ADDR=0.0.0.0:8090 -e API_TOKENS_FILE=… -p 127.0.0.1:8090:8090 meetops
#   docker run --rm --entrypoint enqueue -e REDIS_URL=redis://… meetops dead list
#
# The build stage runs exactly `make build`'s go build command (CI runs
# `make build`, and `make compose-check` checks that the Go version below is
# go.mod's and that the -ldflags here are the Makefile's).

# Keep equal to the go line of go.mod: the golang images set
# GOTOOLCHAIN=local, so an older Go would refuse to build.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/meetops/meetops/internal/version.Version=${VERSION}" \
      -o /out/ ./cmd/worker ./cmd/api ./cmd/enqueue ./cmd/cloudsim

# One static busybox binary, installed as `wget`, gives the compose
# healthcheck an HTTP probe: the runtime image has no shell and no curl.
# Called as "wget" it only ever runs busybox's wget applet.
FROM busybox:1.37-musl AS busybox

# distroless static: CA certificates (the worker calls Huawei Cloud over
# HTTPS), tzdata, /etc/passwd with the nonroot user; no shell, no package
# manager.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="meetops" \
      org.opencontainers.image.description="Reliable asynchronous admin operations on Huawei Cloud RTC and Meeting" \
      org.opencontainers.image.source="https://github.com/meetops/meetops" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=busybox /bin/busybox /usr/local/bin/wget
COPY --from=build /out/worker /out/api /out/enqueue /out/cloudsim /usr/local/bin/
# Inside a container the network namespace is the boundary: listen on every
# interface so a published port reaches /metrics, /healthz and /monitoring.
# That address is not loopback, so the dashboard needs auth: the worker
# refuses to start without DASHBOARD_USER and DASHBOARD_PASSWORD (or
# DASHBOARD_PASSWORD_FILE) unless DASHBOARD_INSECURE=1 is passed explicitly
# (`docker run -e DASHBOARD_INSECURE=1`, logged at warn on every start).
# DASHBOARD_INSECURE=0 is the worker's default, stated here so that the
# image says it does not serve task payloads without auth.
ENV HTTP_ADDR=0.0.0.0:8080 \
    DASHBOARD_INSECURE=0
# The api binary (--entrypoint api) listens on API_ADDR; run it with
# API_ADDR=0.0.0.0:8090 in a container, as compose does.
EXPOSE 8080 8090
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/worker"]
