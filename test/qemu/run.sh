#!/bin/bash
# Run gated's arm builds under user-mode qemu, as they will run on a
# Raspberry Pi: arm64 (Pi 3/4/5 with a 64-bit OS) and arm with GOARM=6
# (armhf, every Pi including the Zero and 1).
#
#   test/qemu/run.sh
#
# For each architecture it cross-compiles gated and gatectl
# (CGO_ENABLED=0 -trimpath, as the packages are built), runs `gated -version`,
# `gated -check-config -config configs/demo.toml` and `gatectl --help`
# under qemu-aarch64-static / qemu-arm-static explicitly (binfmt_misc need
# not be registered), and runs the pure-Go packages' tests
# (internal/gate, internal/config, internal/sim: no peers; internal/gpiocdev:
# the kernel structures' layout on 32-bit arm) with
# `go test -exec qemu-…-static`.
#
# Needs qemu-user-static. Prints PASS/FAIL per check and
# "N passed, N failed"; exits 1 on any failure, 2 if it cannot run.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=linux
unset GOFLAGS
test_pkgs=(./internal/gate/... ./internal/config/... ./internal/sim/... ./internal/gpiocdev/...)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

passed=0
failed=0
# check NAME CMD...: runs CMD, PASS when it succeeds; its output is shown on
# failure only.
check() {
	local name=$1; shift
	if "$@" > "$out/last.log" 2>&1; then
		passed=$((passed + 1))
		echo "qemu: PASS: $name"
	else
		failed=$((failed + 1))
		echo "qemu: FAIL: $name"
		# The failing tests and a timeout's first lines, then the end.
		grep -E -m 30 -e '^(--- FAIL|FAIL|panic:|ok )' -e '_test\.go:[0-9]+' "$out/last.log" | sed 's/^/    /'
		echo "    ..."
		tail -n 15 "$out/last.log" | sed 's/^/    /'
	fi
}
# output_has PATTERN CMD...: CMD succeeds and prints a line matching PATTERN.
output_has() {
	local pattern=$1; shift
	local o
	o=$("$@" 2>&1) || { printf '%s\n' "$o"; return 1; }
	printf '%s\n' "$o"
	grep -qE -- "$pattern" <<<"$o"
}
# prints PATTERN CMD...: CMD prints a line matching PATTERN, whatever its exit
# status (a usage message).
prints() {
	local pattern=$1; shift
	local o
	o=$("$@" 2>&1) || true
	printf '%s\n' "$o"
	grep -qiE -- "$pattern" <<<"$o"
}
# exits_with CODE CMD...: CMD exits with status CODE.
exits_with() {
	local want=$1 got=0; shift
	"$@" || got=$?
	echo "exit status $got, want $want"
	[ "$got" = "$want" ]
}

for arch in arm64 arm; do
	case $arch in
	arm64) qemu=qemu-aarch64-static goarm= ;;
	arm) qemu=qemu-arm-static goarm=6 ;;
	esac
	command -v "$qemu" >/dev/null || { echo "qemu: $qemu is missing: apt-get install qemu-user-static" >&2; exit 2; }
	label=$arch${goarm:+ GOARM=$goarm}
	bin=$out/$arch
	mkdir -p "$bin"
	check "$label: build gated and gatectl" \
		env GOARCH=$arch GOARM=$goarm "$GO" build -trimpath -ldflags "-s -w -X main.version=qemu-test" -o "$bin/" ./cmd/gated ./cmd/gatectl
	check "$label: file says $arch ELF" \
		output_has "$([ $arch = arm64 ] && echo 'ARM aarch64' || echo '32-bit LSB .*ARM, EABI5')" file -L "$bin/gated"
	check "$label: gated -version under $qemu" \
		output_has '^gated qemu-test$' "$qemu" "$bin/gated" -version
	check "$label: gated -check-config -config configs/demo.toml under $qemu" \
		output_has 'driver *= *"sim"' "$qemu" "$bin/gated" -check-config -config configs/demo.toml
	printf '[gate]\nbogus = 1\n' > "$out/bad.toml"
	check "$label: gated -check-config exits 2 on an unknown key" \
		exits_with 2 "$qemu" "$bin/gated" -check-config -config "$out/bad.toml"
	check "$label: gatectl --help under $qemu prints its usage" \
		prints 'usage' "$qemu" "$bin/gatectl" --help
	check "$label: go test -exec $qemu ${test_pkgs[*]}" \
		env GOARCH=$arch GOARM=$goarm "$GO" test -count=1 -timeout 5m -exec "$qemu" "${test_pkgs[@]}"
done

echo "qemu: $passed passed, $failed failed"
[ "$failed" = 0 ]
