#!/usr/bin/env bash
# Builds the Kubernetes API server the lab runs (the `kubernetes-secret`
# store's end-to-end tests), from Go modules: k8s.io/kubernetes v1.37.2 through
# the wrapper module beside this script, whose go.mod points the 33 staging
# modules at their published v0.37.2 (see toolchain/README.md).
#
#   toolchain/kube-apiserver/build.sh          build unless the cache has it (bin/setup-toolchain runs this)
#   toolchain/kube-apiserver/build.sh --path   print where the binary is (whether built or not)
#
# Cached in .tools/kube-apiserver/<version>-<hash of this directory's files>:
# a change of the wrapper (or of the flags below) builds anew; a second run
# takes well under a second.
set -euo pipefail

VERSION=v1.37.2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# Without the version stamped in, the server calls itself v0.0.0-master (and kubectl warns of the skew).
LDFLAGS="-s -w -X k8s.io/component-base/version.gitVersion=$VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean"
KEY=$({ cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/tools.go"; echo "$LDFLAGS"; } | sha256sum | cut -c1-12)
OUT="$ROOT/.tools/kube-apiserver/$VERSION-$KEY"
BIN="$OUT/kube-apiserver"

if [ "${1:-}" = --path ]; then
  echo "$BIN"
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--path]" >&2; exit 2; }

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -qx "Kubernetes $VERSION"; then
  say "kube-apiserver $VERSION ready in ${OUT#"$ROOT/"}"
  exit 0
fi
command -v go >/dev/null 2>&1 || die "Go is not installed: the lab's kube-apiserver is built from Go modules (apt-get install golang)"
mkdir -p "$ROOT/.tools/kube-apiserver"
tmp="$OUT.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
say "building kube-apiserver $VERSION (module k8s.io/kubernetes@$VERSION) with $(go version | cut -d' ' -f3); a cold build downloads ~150 modules and takes about 4 minutes on 2 quiet cores..."
(cd "$HERE" && GOFLAGS="${GOFLAGS:-} -mod=readonly -trimpath" go build -o "$tmp/kube-apiserver" -ldflags "$LDFLAGS" k8s.io/kubernetes/cmd/kube-apiserver) ||
  die "building k8s.io/kubernetes/cmd/kube-apiserver@$VERSION failed (see the Go errors above)"
"$tmp/kube-apiserver" --version | grep -qx "Kubernetes $VERSION" || die "the built kube-apiserver does not report $VERSION: $("$tmp/kube-apiserver" --version 2>&1)"
mv "$tmp" "$OUT"
trap - EXIT
say "built kube-apiserver $VERSION in $(($(date +%s) - t0))s: ${BIN#"$ROOT/"}"
