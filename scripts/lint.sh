#!/usr/bin/env bash
# Runs golangci-lint with the repository's .golangci.yml (errcheck, govet with
# shadow, staticcheck, unused, ineffassign, predeclared, gofmt). Installs the
# pinned version with go install when it is missing or another version.
#
# Usage: scripts/lint.sh [golangci-lint run flags] [packages]   (default ./...)
set -euo pipefail

GOLANGCI_LINT_VERSION=v2.15.0

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
bindir=$(go env GOBIN)
if [[ -z $bindir ]]; then
	bindir="$(go env GOPATH | cut -d: -f1)/bin"
fi
bin="$bindir/golangci-lint"
if [[ ! -x $bin ]] || ! "$bin" version 2>/dev/null | grep -q "${GOLANGCI_LINT_VERSION#v}"; then
	printf 'lint.sh: installing golangci-lint %s with go install (a few minutes, once)\n' "$GOLANGCI_LINT_VERSION" >&2
	go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
fi
if (($# == 0)); then
	set -- ./...
fi
printf 'lint.sh: golangci-lint run %s\n' "$*" >&2
"$bin" run "$@"
