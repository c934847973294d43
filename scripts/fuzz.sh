#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a bounded time, one after the
# other, and fails if any target finds a failing input (after running them all).
#
#   COMFYQ_FUZZ_TIME   time per target, as go test -fuzztime takes it (default 5s;
#                      "30s", "1m", or "500x" for a number of executions)
#   COMFYQ_FUZZ_ONLY   optional regular expression: only targets whose
#                      "package/FuzzName" matches
#
# Usage: scripts/fuzz.sh [packages]   (default ./...)
#
# Targets are the func FuzzX(f *testing.F) of the packages' test files, so a new
# one is picked up without editing this script. Some targets run against a real Redis
# (internal/testenv): run this where scripts/test.sh would run, or from it, so
# that redis-server is on PATH.
#
# A failing input is written by go test to testdata/fuzz/FuzzName/ in the
# package's directory; the script prints its path. Commit it: it then runs as a
# regression case in every go test.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime=${COMFYQ_FUZZ_TIME:-5s}
only=${COMFYQ_FUZZ_ONLY:-}
pkgs=("$@")
if ((${#pkgs[@]} == 0)); then
	pkgs=(./...)
fi

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="$PATH:/usr/local/go/bin"
fi

start=$SECONDS
bindir=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-fuzz.XXXXXX")
trap 'rm -rf "$bindir"' EXIT
cachedir=$(go env GOCACHE)/fuzz

# fuzz_once DIR BIN NAME PKG OUT runs one target. Go's fuzzing engine sometimes ends a
# run that found nothing with "context deadline exceeded" when -fuzztime runs out
# while a worker is busy (seen on loaded machines; no failing input is written): such
# a run is tried again, twice at most. A run that wrote a failing input, or failed
# any other way, fails at once.
fuzz_once() {
	local dir=$1 bin=$2 name=$3 pkg=$4 out=$5 try
	for try in 1 2 3; do
		if (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$fuzztime" \
			-test.fuzzcachedir "$cachedir/$pkg") >"$out" 2>&1; then
			return 0
		fi
		if grep -q 'Failing input written to' "$out" || ! grep -q 'context deadline exceeded' "$out"; then
			return 1
		fi
		log "$name: the fuzzing engine timed out without a failing input (try $try of 3)"
	done
	return 1
}

# Each package's test binary is built once, instrumented for fuzzing, and run
# once per target from the package's directory (where go test runs it, so that
# testdata/fuzz is found and failing inputs are written there).
ntargets=0
failed=()
while read -r pkg dir files; do
	names=()
	while read -r name; do
		if [[ -n $only && ! "$pkg/$name" =~ $only ]]; then
			continue
		fi
		names+=("$name")
	done < <(cd "$dir" && for f in $files; do sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*\*testing\.F).*/\1/p' "$f"; done)
	((${#names[@]})) || continue
	bin="$bindir/$(basename "$dir").$ntargets.test"
	if ! go test -c -fuzz . -o "$bin" "$pkg" >&2; then
		failed+=("$pkg (build)")
		continue
	fi
	for name in "${names[@]}"; do
		ntargets=$((ntargets + 1))
		log "$pkg $name ($fuzztime)"
		out="$bindir/out"
		if ! fuzz_once "$dir" "$bin" "$name" "$pkg" "$out"; then
			cat "$out" >&2
			if [[ -d $dir/testdata/fuzz/$name ]]; then
				log "failing inputs of $name are in ${dir#"$PWD"/}/testdata/fuzz/$name/"
			fi
			failed+=("$pkg $name")
		fi
	done
done < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.Dir}}{{range .TestGoFiles}} {{.}}{{end}}{{range .XTestGoFiles}} {{.}}{{end}}{{end}}' "${pkgs[@]}")

if ((ntargets == 0)); then
	log "no fuzz targets found in ${pkgs[*]}"
	exit 1
fi
log "$ntargets targets in $((SECONDS - start))s"
if ((${#failed[@]})); then
	log "FAILED: ${failed[*]}"
	exit 1
fi
log "all $ntargets targets passed"
