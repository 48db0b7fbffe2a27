#!/bin/bash
# Build gated's Debian packages: dist/gated_<version>_<arch>.deb.
#
#   packaging/build-deb.sh [ARCH...]      (default: amd64 arm64 armhf)
#
# The version is the VERSION file's (packaging/debian/changelog must agree);
# GATED_VERSION=0.1.0~git1 builds a snapshot under another version.
# The build tree is dist/build/gated-<version>: the files of the work tree
# that git tracks or would track, debian/ from packaging/debian, and vendor/
# from `go mod vendor` (the only step that may use the module proxy); the
# package build itself is offline. Each .deb is then checked with lintian
# (no error, no warning), unless LINTIAN=0.
#
# Needs: dpkg-dev, debhelper (13), lintian, Go at /usr/local/go (or GO=...).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export GO=${GO:-/usr/local/go/bin/go}
export GOTOOLCHAIN=local
# Shared with every other build on this machine: the three architectures
# and repeated `make deb` runs reuse compiled packages.
GOCACHE=$("$GO" env GOCACHE)
export GOCACHE
unset GOFLAGS GOOS GOARCH GOARM

archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64 armhf)

release=$(tr -d ' \n' < VERSION)
version=${GATED_VERSION:-$release}
changelog_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
if [ -z "${GATED_VERSION:-}" ] && [ "$changelog_version" != "$release" ]; then
	echo "build-deb: VERSION says $release but packaging/debian/changelog says $changelog_version: add a changelog entry" >&2
	exit 1
fi

tree=dist/build/gated-$version
rm -rf dist/build
mkdir -p "$tree"

# What `go build` here would see: tracked and new (not ignored) files, less
# the ones deleted in the work tree.
git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf - | tar -xf - -C "$tree"
rm -rf "$tree/debian"
cp -rL packaging/debian "$tree/debian"

if [ "$version" != "$changelog_version" ]; then
	# A snapshot: its own changelog entry, in the build tree only.
	{
		printf 'gated (%s) UNRELEASED; urgency=medium\n\n' "$version"
		printf '  * Snapshot build from git %s.\n\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
		printf ' -- %s  %s\n\n' "$(dpkg-parsechangelog -l packaging/debian/changelog -S Maintainer)" "$(date -R)"
		cat packaging/debian/changelog
	} > "$tree/debian/changelog"
fi

echo "build-deb: vendoring modules into $tree/vendor"
(cd "$tree" && "$GO" mod vendor)

mkdir -p dist
for arch in "${archs[@]}"; do
	log=dist/build/build-$arch.log
	echo "build-deb: building gated $version for $arch (log: $log)"
	start=$(date +%s)
	if ! (cd "$tree" && dpkg-buildpackage -b -a"$arch" --no-sign) > "$log" 2>&1; then
		tail -n 40 "$log" >&2
		echo "build-deb: dpkg-buildpackage for $arch failed, see $log" >&2
		exit 1
	fi
	deb=gated_${version}_${arch}.deb
	mv "dist/build/$deb" "dist/$deb"
	echo "build-deb: dist/$deb ($(( $(date +%s) - start ))s)"
done

if [ "${LINTIAN:-1}" != 0 ]; then
	for arch in "${archs[@]}"; do
		deb=dist/gated_${version}_${arch}.deb
		echo "build-deb: lintian $deb"
		# --fail-on error,warning: a warning fails the build as an error does;
		# the package's overrides (each with its reason) are honoured.
		lintian --fail-on error,warning --tag-display-limit 0 "$deb"
	done
fi
