#!/usr/bin/env bash
# Runs comfyq's checks and tests against real services, on a fresh Debian
# machine with Go:
#
#   - Redis: tests start their own redis-server (internal/testenv), so it must be
#     on PATH; it is installed with apt-get if missing (as root). One shared
#     redis-server is started for COMFYQ_TEST_REDIS_URL unless that is set.
#   - S3: versitygw (installed with go install if missing) is started with its
#     posix backend in a temporary directory, with random credentials, unless
#     COMFYQ_TEST_S3_URL is set.
#   - gofmt, go vet, then go test -race, its simulated ComfyUI nodes speaking
#     COMFYQ_TEST_COMFYUI_VERSION (default the newest the simulator knows); then the
#     worker and fault suites (./worker/, ./faults/, where tested) once more against
#     each other ComfyUI version the simulator knows.
#   - With no package arguments or with ./api/comfysdk/..., the official Comfy
#     TypeScript SDK (@comfyorg/sdk from npm, pinned in api/comfysdk/e2e) against a
#     real stack on this Redis server binary and the S3 service above (node --test;
#     the SDK asks for Node 22 and runs on 20 with an EBADENGINE warning from npm).
#   - With no package arguments (the whole suite) or with ./api/console/..., the
#     console's browser tests after the Go tests: Playwright (npm ci in
#     api/console/e2e) driving Debian's Chromium (/usr/bin/chromium; it and
#     Node.js are installed with apt-get if missing, as root) against a real
#     stack started from a freshly built comfyq binary.
#
# Usage: scripts/test.sh [go test flags] [packages]
#   scripts/test.sh                              # everything
#   scripts/test.sh ./storage/... ./internal/... # some packages
#   scripts/test.sh ./api/console/...            # the console, browser tests included
#   scripts/test.sh -run TestConformance -v ./storage/s3
# Without package arguments it checks and tests ./...; with them, gofmt, vet and
# test look at those packages only.
#
# Everything started here is stopped on exit, by process id.
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
# The ComfyUI versions comfy/comfysim simulates (comfysim.Versions), newest first, and
# the packages whose tests run on each of them, not only on the main pass's.
COMFYUI_VERSIONS=(0.38.1 0.3.64)
EVERY_VERSION_PKGS=(./worker/ ./faults/)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
start_seconds=$SECONDS
pids=()
tmpdirs=()

log() { printf 'test.sh: %s\n' "$*" >&2; }

cleanup() {
	local status=$?
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
	done
	if ((${#tmpdirs[@]})); then
		rm -rf "${tmpdirs[@]}"
	fi
	log "finished in $((SECONDS - start_seconds))s (exit status $status)"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# new_tmpdir: make a temporary directory, removed on exit, and set $tmpdir to
# it (not printed: a command substitution could not record it for cleanup).
new_tmpdir() {
	tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/comfyq-test.XXXXXX")
	tmpdirs+=("$tmpdir")
}

# port_in_use PORT: true if something listens on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# random_port: a port on 127.0.0.1 that nothing listens on right now.
random_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 40000))
		if ! port_in_use "$p"; then
			printf '%s\n' "$p"
			return 0
		fi
	done
	log "no free port found"
	return 1
}

random_hex() {
	od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# redis_ready PORT: true if a Redis on PORT answers PING.
redis_ready() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" &&
			printf 'PING\r\n' >&3 &&
			IFS= read -r -t 2 reply <&3 &&
			[[ $reply == +PONG* ]]
	) 2>/dev/null
}

# http_ready PORT: true if an HTTP server on PORT answers.
http_ready() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" &&
			printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
			IFS= read -r -t 2 reply <&3 &&
			[[ $reply == HTTP/* ]]
	) 2>/dev/null
}

# wait_until SECONDS PID CHECK ARGS...: wait until CHECK ARGS succeeds, failing
# if PID exits or the time is up.
wait_until() {
	local deadline=$((SECONDS + $1)) pid=$2
	shift 2
	until "$@"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		if ((SECONDS > deadline)); then
			return 1
		fi
		sleep 0.05
	done
}

ensure_redis_server() {
	if command -v redis-server >/dev/null; then
		return
	fi
	if [[ $(id -u) != 0 ]]; then
		log "redis-server is not on PATH; install it (apt-get install redis-server) and run again"
		exit 1
	fi
	log "installing redis-server with apt-get"
	# Keep the package from starting the system service: tests start their own.
	local policy=/usr/sbin/policy-rc.d made_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		made_policy=1
	fi
	local rc=0
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } || rc=$?
	if [[ -n $made_policy ]]; then
		rm -f "$policy"
	fi
	if ((rc != 0)) || ! command -v redis-server >/dev/null; then
		log "installing redis-server failed"
		exit 1
	fi
}

start_shared_redis() {
	local dir port pid
	new_tmpdir
	dir=$tmpdir
	for _ in 1 2 3 4 5; do
		port=$(random_port)
		redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --logfile "$dir/redis.log" \
			--daemonize no --save '' --appendonly no </dev/null &
		pid=$!
		pids+=("$pid")
		if wait_until 20 "$pid" redis_ready "$port"; then
			export COMFYQ_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
			log "shared redis-server (pid $pid) at $COMFYQ_TEST_REDIS_URL"
			return
		fi
		kill "$pid" 2>/dev/null || true
	done
	log "could not start redis-server; its log:"
	tail -n 20 "$dir/redis.log" >&2 || true
	exit 1
}

versitygw_bin() {
	local bindir
	bindir=$(go env GOBIN)
	if [[ -z $bindir ]]; then
		bindir="$(go env GOPATH | cut -d: -f1)/bin"
	fi
	printf '%s/versitygw\n' "$bindir"
}

ensure_versitygw() {
	local bin
	bin=$(versitygw_bin)
	# An install may already be running (started by hand or by a concurrent
	# run): wait for it rather than compiling a second copy.
	local other
	other=$(pgrep -f "go install github.com/versity/versitygw" || true)
	if [[ -n $other ]]; then
		log "waiting for the versitygw install already running (pid $other)"
		local deadline=$((SECONDS + 1200))
		while pgrep -f "go install github.com/versity/versitygw" >/dev/null; do
			if ((SECONDS > deadline)); then
				log "the running versitygw install did not finish in 20 minutes"
				exit 1
			fi
			sleep 2
		done
	fi
	if [[ ! -x $bin ]]; then
		log "installing versitygw $VERSITYGW_VERSION with go install (takes a few minutes, once)"
		go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
	fi
	printf '%s\n' "$bin"
}

start_versitygw() {
	local bin dir port pid access secret
	bin=$(ensure_versitygw)
	new_tmpdir
	dir=$tmpdir
	mkdir -p "$dir/data" "$dir/meta"
	access="comfyq$(random_hex 6)"
	secret=$(random_hex 20)
	for _ in 1 2 3 4 5; do
		port=$(random_port)
		ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" \
			"$bin" --port "127.0.0.1:$port" --quiet posix --sidecar "$dir/meta" "$dir/data" \
			</dev/null >"$dir/versitygw.log" 2>&1 &
		pid=$!
		pids+=("$pid")
		if wait_until 30 "$pid" http_ready "$port"; then
			export COMFYQ_TEST_S3_URL="s3://comfyq-test?endpoint=http://127.0.0.1:$port&region=us-east-1&path_style=true"
			export AWS_ACCESS_KEY_ID="$access" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=us-east-1
			# Nothing else from an AWS environment may mix with these credentials.
			unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
			export AWS_EC2_METADATA_DISABLED=true
			log "versitygw (pid $pid) at http://127.0.0.1:$port, data in $dir"
			return
		fi
		kill "$pid" 2>/dev/null || true
	done
	log "could not start versitygw; its log:"
	tail -n 20 "$dir/versitygw.log" >&2 || true
	exit 1
}

# apt_install PACKAGE...: install Debian packages (as root), or fail saying what is
# missing.
apt_install() {
	if [[ $(id -u) != 0 ]]; then
		log "$* not installed and not root: install them (apt-get install $*) and run again"
		exit 1
	fi
	log "installing $* with apt-get"
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }; then
		log "installing $* with apt-get failed: the browser tests need them (Chromium at /usr/bin/chromium, Node.js 18 or later with npm)"
		exit 1
	fi
}

# run_browser_tests runs the console's end-to-end tests (api/console/e2e) in
# headless Chromium against a stack started from a freshly built binary.
run_browser_tests() {
	local chromium=${COMFYQ_CHROMIUM:-/usr/bin/chromium}
	if [[ ! -x $chromium ]]; then
		apt_install chromium
		if [[ ! -x $chromium ]]; then
			log "Chromium is not at $chromium after apt-get install chromium; set COMFYQ_CHROMIUM to its path"
			exit 1
		fi
	fi
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		apt_install nodejs npm
	fi
	new_tmpdir
	log "browser tests: building comfyq, npm ci, node --test (api/console/e2e)"
	go build -o "$tmpdir/comfyq" ./cmd/comfyq
	(cd api/console/e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
	(cd api/console/e2e && COMFYQ_BIN="$tmpdir/comfyq" COMFYQ_CHROMIUM="$chromium" node --test --test-concurrency=1)
}

# run_sdk_tests runs the Comfy SDK tests (api/comfysdk/e2e) against a stack started
# from a freshly built binary, with outputs and assets in the S3 service started above.
run_sdk_tests() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		apt_install nodejs npm
	fi
	new_tmpdir
	log "Comfy SDK tests: building comfyq, npm ci, node --test (api/comfysdk/e2e)"
	go build -o "$tmpdir/comfyq" ./cmd/comfyq
	(cd api/comfysdk/e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
	(cd api/comfysdk/e2e && COMFYQ_BIN="$tmpdir/comfyq" node --test --test-concurrency=1)
}

# Split the arguments: package patterns select what vet and test check;
# everything else goes to go test as flags.
pkgs=()
flags=()
for arg in "$@"; do
	case $arg in
	./* | ../* | . | all | std | */...) pkgs+=("$arg") ;;
	*) flags+=("$arg") ;;
	esac
done
if ((${#pkgs[@]} == 0)); then
	pkgs=(./...)
fi
# gofmt checks the directories of the packages tested (all of them by default).
fmtdirs=()
for p in "${pkgs[@]}"; do
	case $p in
	all | std | ./... | ...) fmtdirs=(.) && break ;;
	*/...) fmtdirs+=("${p%/...}") ;;
	*) fmtdirs+=("$p") ;;
	esac
done

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="$PATH:/usr/local/go/bin"
fi
go version >&2

ensure_redis_server
if [[ -z ${COMFYQ_TEST_REDIS_URL:-} ]]; then
	start_shared_redis
else
	log "using COMFYQ_TEST_REDIS_URL from the environment"
fi

if [[ -z ${COMFYQ_TEST_S3_URL:-} ]]; then
	start_versitygw
else
	log "using COMFYQ_TEST_S3_URL from the environment"
fi

log "gofmt -l ${fmtdirs[*]}"
unformatted=$(gofmt -l "${fmtdirs[@]}")
if [[ -n $unformatted ]]; then
	log "these files need gofmt -w:"
	printf '%s\n' "$unformatted" >&2
	exit 1
fi

log "go vet ${pkgs[*]}"
go vet "${pkgs[@]}"

main_version=${COMFYQ_TEST_COMFYUI_VERSION:-${COMFYUI_VERSIONS[0]}}
pass_start=$SECONDS
log "go test -race ${flags[*]} ${pkgs[*]} (simulated ComfyUI $main_version)"
COMFYQ_TEST_COMFYUI_VERSION=$main_version go test -race -count=1 -timeout 20m "${flags[@]}" "${pkgs[@]}"
log "go test on ComfyUI $main_version took $((SECONDS - pass_start))s"

# The worker and fault suites again on every other version, unchanged: of the
# packages tested, those in EVERY_VERSION_PKGS.
again=()
for p in "${pkgs[@]}"; do
	p=${p%/...}
	p=${p%/}
	for e in "${EVERY_VERSION_PKGS[@]}"; do
		if [[ $p == . || $p == "${e%/}" ]]; then
			again+=("$e")
		fi
	done
done
if ((${#again[@]})); then
	for v in "${COMFYUI_VERSIONS[@]}"; do
		if [[ $v == "$main_version" ]]; then
			continue
		fi
		pass_start=$SECONDS
		log "go test -race ${flags[*]} ${again[*]} (simulated ComfyUI $v)"
		COMFYQ_TEST_COMFYUI_VERSION=$v go test -race -count=1 -timeout 20m "${flags[@]}" "${again[@]}"
		log "go test on ComfyUI $v took $((SECONDS - pass_start))s"
	done
fi

for p in "${pkgs[@]}"; do
	if [[ $p == ./... || $p == ./api/comfysdk* ]]; then
		run_sdk_tests
		break
	fi
done
for p in "${pkgs[@]}"; do
	if [[ $p == ./... || $p == ./api/console* ]]; then
		run_browser_tests
		break
	fi
done
