# weft node agent image.
#
# Stage 1 builds a static binary (CGO_ENABLED=0) with the flags of the
# Makefile's build target; stage 2 is `scratch` with only that binary, the CA
# bundle (for TLS to remote-write, OTLP and Fluentd endpoints) and a non-root
# numeric user. deploy/deploy_build_test.go runs the `go build` line below with
# the same flags and checks that the result is statically linked; keep it on
# one RUN instruction.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t weft:<tag> .

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/weft ./cmd/weft

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/weft /weft
# 65532 is the conventional "nonroot" uid/gid of distroless images; the
# DaemonSet sets runAsUser/runAsGroup to the same values.
USER 65532:65532
# OTLP gRPC/HTTP, Jaeger gRPC/Thrift HTTP, Zipkin, query API, Prometheus
# exporter, self-metrics, health check.
EXPOSE 4317 4318 14250 14268 9411 8686 9464 8888 13133
ENTRYPOINT ["/weft"]
