#!/usr/bin/env bash
# Builds the Gitea server the lab runs (lab/lib/gitea.sh) into .tools/gitea
# (git-ignored): the binary, and the options/ and templates/ folders of its
# module, which a build without bindata reads from its work dir.
#
# Gitea v1.26.0 from the Go module proxy through the wrapper module in
# toolchain/gitea (it repeats Gitea's seven replace directives; `go install`
# refuses a module with replaces). Built once per user and machine into the
# cache beside the Pulumi toolchain's, then copied; idempotent (a second run
# takes about a second). Called by bin/setup-toolchain.
set -euo pipefail

GITEA_VERSION=v1.26.0
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/.tools/gitea"
CACHE_ROOT=${ROTATION_TOOLCHAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secret-rotation/toolchain}
KEY=$(cat "$ROOT/toolchain/gitea/go.mod" "$ROOT/toolchain/gitea/go.sum" | sha256sum | cut -c1-12)
CACHE="$CACHE_ROOT/gitea-$GITEA_VERSION-$KEY"

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

installed_ok() {
  [ -x "$OUT/gitea" ] && [ -d "$OUT/options" ] && [ -d "$OUT/templates" ] &&
    [ "$(cat "$OUT/.key" 2>/dev/null)" = "$KEY" ]
}

if installed_ok; then
  say "gitea ready: $GITEA_VERSION in .tools/gitea"
  exit 0
fi

if [ ! -x "$CACHE/gitea" ]; then
  command -v go >/dev/null 2>&1 || die "Go is not installed: the lab's Gitea $GITEA_VERSION is built from Go modules (apt-get install golang)"
  tmp="$CACHE.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  export GOFLAGS="${GOFLAGS:-} -mod=readonly -trimpath"
  t0=$(date +%s)
  say "building gitea $GITEA_VERSION (module code.gitea.io/gitea@$GITEA_VERSION, tags sqlite sqlite_unlock_notify); a cold build takes several minutes on 2 cores..."
  (cd "$ROOT/toolchain/gitea" && go build -o "$tmp/gitea" -tags 'sqlite sqlite_unlock_notify' \
    -ldflags "-s -w -X main.Version=${GITEA_VERSION#v} -X 'main.Tags=sqlite sqlite_unlock_notify'" code.gitea.io/gitea) ||
    die "building code.gitea.io/gitea@$GITEA_VERSION failed (see the Go errors above)"
  src=$(cd "$ROOT/toolchain/gitea" && go list -m -f '{{.Dir}}' code.gitea.io/gitea)
  cp -r "$src/options" "$src/templates" "$tmp/"
  chmod -R u+w "$tmp"
  say "built gitea in $(($(date +%s) - t0))s"
  mkdir -p "$CACHE_ROOT"
  rm -rf "$CACHE" && mv "$tmp" "$CACHE"
  trap - EXIT
else
  say "using the cached gitea build in $CACHE"
fi

rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp"
cp -r "$CACHE/gitea" "$CACHE/options" "$CACHE/templates" "$OUT.tmp/"
printf '%s\n' "$KEY" >"$OUT.tmp/.key"
chmod -R a+rX "$OUT.tmp"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
"$OUT/gitea" --version >/dev/null 2>&1 || die "$OUT/gitea does not run"
say "gitea ready: $("$OUT/gitea" --version 2>/dev/null | head -n 1) in .tools/gitea"
