# vigil: build, test, package.
#   make build          bin/vigil and its BGP helper bin/vigil-bgp (static, CGO_ENABLED=0)
#   make test           scripts/test (gofmt, vet, every test tier)
#   make deb            build/vigil_<version>_amd64.deb (VERSION=... to override)
export PATH := /usr/local/go/bin:$(PATH)

GO      ?= go
VERSION ?=
OUT     ?= build

.PHONY: build test deb clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$(or $(VERSION),dev)" -o bin/ ./cmd/vigil ./cmd/vigil-bgp

test:
	scripts/test

deb:
	VERSION="$(VERSION)" OUT="$(OUT)" packaging/build-deb.sh

clean:
	rm -rf bin $(OUT)
