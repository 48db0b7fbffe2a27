# Everyday targets. `make test` is what CI runs (.ci/run) and what README.md
# tells you to run.
GO      ?= go
VERSION ?= $(shell cat VERSION 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS    := ./...

.PHONY: all build test unit test32 cross vet lint fuzz bench deb e2e clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# The whole suite: vet, race-enabled tests against real mosquitto and
# dbus-daemon, a 32-bit run (armhf is 32-bit), arm builds run under qemu.
test: vet unit test32 cross

vet:
	@test -z "$$(gofmt -l cmd internal)" || { gofmt -l cmd internal; echo 'gofmt: the files above need formatting'; exit 1; }
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

# 32-bit: armhf is 32-bit. periph's CI runs GOARCH=386, but this kernel
# cannot execute i386 binaries, so 386 is vetted and built, and the pure-Go
# packages run as armhf (GOARM=6, the Pi Zero/1) under qemu-arm-static.
test32:
	GOARCH=386 CGO_ENABLED=0 $(GO) vet ./...
	GOARCH=arm GOARM=6 CGO_ENABLED=0 $(GO) test -count=1 -exec qemu-arm-static ./internal/gate/... ./internal/config/... ./internal/sim/...

cross:
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/...
	GOOS=linux GOARCH=arm GOARM=6 CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/...

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 $(PKGS)

fuzz:
	$(GO) test -run=NONE -fuzz=FuzzFromString -fuzztime=30s ./internal/config
	$(GO) test -run=NONE -fuzz=FuzzParseCommand -fuzztime=30s ./internal/gate

clean:
	rm -rf bin dist
