# Everyday targets. `make test` is what CI runs (.ci/run) and what README.md
# tells you to run.
GO      ?= go
VERSION ?= $(shell cat VERSION 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS    := ./...

.PHONY: all build deps test vet unit cross lint fuzz bench deb e2e e2e-gpio unit-check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# What the tests, `make deb`, `make e2e` and `make e2e-gpio` need from Debian:
# real peers (mosquitto, dbus-daemon), busctl and gdbus, qemu user emulation,
# the packaging tools and systemd-nspawn; chromium for the web panel's
# browser tests (internal/weblink, chromedp); for e2e-gpio qemu system
# emulation, the image tools (mkfs.ext4 -d, cpio, a static busybox, depmod)
# and the compiler the Debian kernel's headers name (gcc-12). apt-get runs as
# root: directly when you are root (containers, CI images have no sudo), else
# through sudo.
DEPS := mosquitto mosquitto-clients dbus-daemon systemd libglib2.0-bin util-linux \
	qemu-user-static dpkg-dev debhelper lintian debootstrap systemd-container file \
	chromium qemu-system-x86 e2fsprogs cpio busybox-static kmod xz-utils gcc-12 make libelf1
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		asroot=; \
		if [ "$$(id -u)" != 0 ]; then \
			command -v sudo >/dev/null || { echo "make deps: not root and no sudo: run it as root"; exit 1; }; \
			asroot=sudo; \
		fi; \
		$$asroot apt-get update -qq && $$asroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# The whole suite: gofmt and vet (also as a 32-bit build), race-enabled
# tests against real mosquitto and dbus-daemon, and the arm builds and the
# pure-Go tests under qemu.
test: vet unit cross

# periph's CI vets GOARCH=386 for 32-bit; this kernel cannot execute i386
# binaries, so the 32-bit tests run as armhf (GOARM=6) in `cross`.
vet:
	@test -z "$$(gofmt -l cmd internal)" || { gofmt -l cmd internal; echo 'gofmt: the files above need formatting'; exit 1; }
	$(GO) vet $(PKGS)
	GOARCH=386 CGO_ENABLED=0 $(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

# arm64 and armhf (GOARM=6) builds run under qemu-user-static (-version,
# -check-config), and the pure-Go packages' tests run there too.
cross:
	GO=$(GO) test/qemu/run.sh

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzFromString$$' -fuzztime=30s ./internal/config
	$(GO) test -run='^$$' -fuzz='^FuzzParseCommand$$' -fuzztime=30s ./internal/gate
	$(GO) test -run='^$$' -fuzz='^FuzzController$$' -fuzztime=30s ./internal/gate
	$(GO) test -run='^$$' -fuzz='^FuzzParseCommand$$' -fuzztime=30s ./internal/mqttlink
	$(GO) test -run='^$$' -fuzz='^FuzzDecode$$' -fuzztime=30s ./internal/state
	$(GO) test -run='^$$' -fuzz='^FuzzEstimator$$' -fuzztime=30s ./internal/position
	$(GO) test -run='^$$' -fuzz='^FuzzSamples$$' -fuzztime=30s ./internal/position

# The figures of BENCHMARKS.md: gatebench starts its own mosquitto and
# dbus-daemon and builds ./cmd/gated. BENCH_FLAGS='-idle 10s -n 200' is quick.
BENCH_FLAGS ?=
bench:
	$(GO) run ./cmd/gatebench $(BENCH_FLAGS)
	$(GO) test -run=NONE -bench=. -benchmem ./internal/...

# dist/gated_$(VERSION)_{amd64,arm64,armhf}.deb, each passed by lintian
# (packaging/build-deb.sh: dpkg-dev, debhelper, lintian, Go at /usr/local/go).
deb:
	packaging/build-deb.sh

# The amd64 package installed and driven in a booted Debian bookworm under
# systemd-nspawn (root; debootstrap, systemd-container). The rootfs is cached
# in /var/cache/gated-e2e.
e2e:
	LINTIAN=0 packaging/build-deb.sh amd64
	test/e2e/run.sh dist/gated_$(VERSION)_amd64.deb

# The amd64 package on real kernel GPIO lines: a Debian bookworm guest under
# qemu-system-x86_64 (TCG) with a pinned Debian kernel and gpio-sim, built
# out of tree here (root; test/e2e-gpio/run.sh). Kernel packages, module,
# rootfs and image are cached in /var/cache/gated-e2e-gpio.
e2e-gpio:
	LINTIAN=0 packaging/build-deb.sh amd64
	test/e2e-gpio/run.sh dist/gated_$(VERSION)_amd64.deb

# SPEC.md: systemd-analyze security gated.service at or below 2.0.
unit-check:
	systemd-analyze security --offline=yes --threshold=20 systemd/gated.service | tail -n 1

clean:
	rm -rf bin dist
