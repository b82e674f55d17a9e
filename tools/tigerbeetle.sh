#!/usr/bin/env bash
# TigerBeetle for this repository: the toolchain (libclang, Zig 0.14.1), the 0.16.78 server built
# from the source that the `tigerbeetle-unofficial-sys` crate ships, and a local test cluster.
# Everything lives in `.tools/` at the repository root (git-ignored); nothing is downloaded but
# Debian and PyPI packages and crates.
#
#   tools/tigerbeetle.sh install                  toolchain + server binary (idempotent, quick when done)
#   tools/tigerbeetle.sh up [--replicas 1|3] [--port-base P] [--cache-grid SIZE]
#                                                 format and start a cluster on 127.0.0.1, print its addresses
#   tools/tigerbeetle.sh start-replica I          restart replica I of the running cluster (same data file)
#   tools/tigerbeetle.sh kill-replica I           SIGKILL replica I (by its recorded pid)
#   tools/tigerbeetle.sh status                   which replicas run
#   tools/tigerbeetle.sh addresses                print the cluster's address list
#   tools/tigerbeetle.sh down                     stop the replicas (recorded pids only), remove data files
#   eval "$(tools/tigerbeetle.sh env)"            export ZIG_PATH for cargo builds of the client crate
#
# The cluster id is 0. Replicas bind to loopback only: TigerBeetle has no authentication.
# Production batch sizes: never `--development` (it caps requests at 254 transfers).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TOOLS="$ROOT/.tools"
ZIG_DIR="$TOOLS/zig"
ZIG="$ZIG_DIR/ziglang/zig"
SRC="$TOOLS/tigerbeetle-src"
BIN="$TOOLS/bin/tigerbeetle"
CLUSTER="$TOOLS/cluster"

ZIG_VERSION="0.14.1"
TB_RELEASE="0.16.78"
TB_COMMIT="c3d9b09dc88e94dde9ac915c6e94a4c650332080"
TB_SYS_CRATE="tigerbeetle-unofficial-sys-0.14.28+$TB_RELEASE"
CLUSTER_ID=0
# The running cluster's settings, read from .tools/cluster/config by load_config.
REPLICAS="" PORT_BASE="" CACHE_GRID="" ADDRESSES=""

say() { printf '[tigerbeetle] %s\n' "$*" >&2; }
die() { printf '[tigerbeetle] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# install

libclang_present() {
  if command -v dpkg-query >/dev/null 2>&1; then
    dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null | grep -q 'ok installed'
  else
    # Not Debian: trust an explicit LIBCLANG_PATH or a libclang the loader knows.
    [ -n "${LIBCLANG_PATH:-}" ] || ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'
  fi
}

install_libclang() {
  if libclang_present; then
    return
  fi
  command -v apt-get >/dev/null 2>&1 || die "libclang is missing and apt-get is not available: install libclang (dev) by hand"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing libclang-dev (the client crate's build script runs bindgen)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libclang-dev >/dev/null
  libclang_present || die "libclang-dev did not install"
}

zig_ok() { [ -x "$ZIG" ] && [ "$("$ZIG" version 2>/dev/null)" = "$ZIG_VERSION" ]; }

install_zig() {
  if zig_ok; then
    return
  fi
  local python
  python="$(command -v python3 || command -v python || true)"
  [ -n "$python" ] || die "python3 is needed to install Zig from PyPI (package ziglang==$ZIG_VERSION)"
  say "installing Zig $ZIG_VERSION into .tools/zig (PyPI package ziglang)"
  rm -rf "$ZIG_DIR"
  PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
    --target "$ZIG_DIR" "ziglang==$ZIG_VERSION"
  zig_ok || die "Zig at $ZIG does not report version $ZIG_VERSION"
}

server_ok() { [ -x "$BIN" ] && "$BIN" version 2>/dev/null | grep -q "version $TB_RELEASE+"; }

# The vendored TigerBeetle tree inside the -sys crate, fetched by cargo into its registry.
find_vendored_source() {
  local cargo_home="${CARGO_HOME:-$HOME/.cargo}" dir
  for dir in "$cargo_home"/registry/src/*/"$TB_SYS_CRATE"/tigerbeetle; do
    if [ -f "$dir/build.zig" ]; then
      printf '%s\n' "$dir"
      return 0
    fi
  done
  return 1
}

install_server() {
  if server_ok; then
    return
  fi
  local vendored
  if ! vendored="$(find_vendored_source)"; then
    say "cargo fetch (for the TigerBeetle source inside $TB_SYS_CRATE)"
    (cd "$ROOT" && cargo fetch --quiet)
    vendored="$(find_vendored_source)" || die "$TB_SYS_CRATE not found in the cargo registry after cargo fetch"
  fi
  say "building the TigerBeetle $TB_RELEASE server from $vendored (about 1.5 minutes on 2 cores)"
  rm -rf "$SRC"
  mkdir -p "$TOOLS"
  cp -R "$vendored" "$SRC"
  chmod -R u+w "$SRC"
  (cd "$SRC" && env -u CI "$ZIG" build -Drelease \
    "-Dconfig-release=$TB_RELEASE" "-Dconfig-release-client-min=$TB_RELEASE" \
    "-Dgit-commit=$TB_COMMIT")
  mkdir -p "$(dirname "$BIN")"
  cp "$SRC/tigerbeetle" "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
  server_ok || die "the built server does not report version $TB_RELEASE"
}

cmd_install() {
  local t0=$SECONDS
  install_libclang
  install_zig
  install_server
  say "ready ($((SECONDS - t0)) s): zig $("$ZIG" version), server $("$BIN" version | head -n 1)"
}

# ---------------------------------------------------------------------------------------------
# cluster

pid_file() { printf '%s/replica-%s.pid\n' "$CLUSTER" "$1"; }
data_file() { printf '%s/%s_%s.tigerbeetle\n' "$CLUSTER" "$CLUSTER_ID" "$1"; }
log_file() { printf '%s/replica-%s.log\n' "$CLUSTER" "$1"; }

# The pid recorded for replica I, if that process is alive and is our server binary.
replica_pid() {
  local file pid
  file="$(pid_file "$1")"
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: the process must be running our binary.
  [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" = "$BIN" ] || return 1
  printf '%s\n' "$pid"
}

check_replica_index() {
  if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -ge "$REPLICAS" ]; then
    die "no replica $1 in a cluster of $REPLICAS"
  fi
}

load_config() {
  [ -f "$CLUSTER/config" ] || die "no cluster: run 'tools/tigerbeetle.sh up' first"
  # shellcheck source=/dev/null
  . "$CLUSTER/config"
}

start_replica_process() {
  local i="$1" extra=()
  [ -n "$CACHE_GRID" ] && extra+=("--cache-grid=$CACHE_GRID")
  nohup "$BIN" start "--addresses=$ADDRESSES" "${extra[@]}" "$(data_file "$i")" \
    >>"$(log_file "$i")" 2>&1 </dev/null &
  local pid=$! n=0
  echo "$pid" >"$(pid_file "$i")"
  # Until the exec, the pid runs bash or nohup, which replica_pid would not accept: wait for it.
  while [ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" != "$BIN" ]; do
    kill -0 "$pid" 2>/dev/null || return 0 # exited at once: the caller reports it
    n=$((n + 1))
    [ $n -lt 250 ] || return 0
    sleep 0.02
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until the cluster answers a request: a lookup through the server's own repl (each probe
# is a new client session, so the probes are few and spaced).
wait_ready() {
  local deadline=$((SECONDS + ${1:-60})) i out
  while [ $SECONDS -lt $deadline ]; do
    for ((i = 0; i < REPLICAS; i++)); do
      if [ -f "$(pid_file "$i")" ] && ! replica_pid "$i" >/dev/null; then
        tail -n 20 "$(log_file "$i")" >&2 || true
        die "replica $i exited during start-up (log above: $(log_file "$i"))"
      fi
    done
    # Cheap first: every running replica accepts connections (a repl started before that waits
    # in its client's reconnect backoff).
    local listening=1
    for ((i = 0; i < REPLICAS; i++)); do
      if replica_pid "$i" >/dev/null && ! port_open $((PORT_BASE + i)); then listening=0; fi
    done
    if [ $listening -eq 0 ]; then
      sleep 0.1
      continue
    fi
    # The repl exits 1 when the lookup finds nothing (and prints that on stderr), so read its
    # answer instead of its exit status.
    out="$(timeout 10 "$BIN" repl "--cluster=$CLUSTER_ID" "--addresses=$ADDRESSES" \
      --command="lookup_accounts id=1" 2>&1 || true)"
    case "$out" in *"No accounts were found"* | *'"id"'*) return 0 ;; esac
    sleep 0.5
  done
  return 1
}

cmd_up() {
  local replicas=1 port_base=3000 cache_grid=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --replicas) replicas="${2:?}"; shift 2 ;;
      --replicas=*) replicas="${1#*=}"; shift ;;
      --port-base) port_base="${2:?}"; shift 2 ;;
      --port-base=*) port_base="${1#*=}"; shift ;;
      --cache-grid) cache_grid="${2:?}"; shift 2 ;;
      --cache-grid=*) cache_grid="${1#*=}"; shift ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  case "$replicas" in 1 | 3) ;; *) die "up: --replicas must be 1 or 3" ;; esac
  if ! [[ "$port_base" =~ ^[0-9]+$ ]] || [ "$port_base" -lt 1024 ] || [ $((port_base + replicas)) -gt 65536 ]; then
    die "up: bad --port-base '$port_base'"
  fi
  # Three replicas with the default grid cache would reserve several GiB each.
  if [ -z "$cache_grid" ] && [ "$replicas" -eq 3 ]; then
    cache_grid="256MiB"
  fi
  server_ok || die "server binary missing: run 'tools/tigerbeetle.sh install' first"

  if [ -f "$CLUSTER/config" ]; then
    # shellcheck source=/dev/null
    . "$CLUSTER/config"
    local running=0 i
    for ((i = 0; i < REPLICAS; i++)); do replica_pid "$i" >/dev/null && running=$((running + 1)); done
    if [ "$running" -gt 0 ]; then
      if [ "$REPLICAS" = "$replicas" ] && [ "$PORT_BASE" = "$port_base" ]; then
        say "already up ($running of $REPLICAS replicas running)"
        wait_ready 60 || die "the running cluster does not answer"
        printf '%s\n' "$ADDRESSES"
        return 0
      fi
      die "a cluster of $REPLICAS replica(s) on port $PORT_BASE is up: run 'tools/tigerbeetle.sh down' first"
    fi
    remove_cluster_files
  fi

  local addresses="" i
  for ((i = 0; i < replicas; i++)); do
    port_open $((port_base + i)) && die "port $((port_base + i)) on 127.0.0.1 is taken (use --port-base)"
    addresses+="${addresses:+,}127.0.0.1:$((port_base + i))"
  done

  mkdir -p "$CLUSTER"
  cat >"$CLUSTER/config" <<EOF
REPLICAS=$replicas
PORT_BASE=$port_base
CACHE_GRID=$cache_grid
ADDRESSES=$addresses
EOF
  # shellcheck source=/dev/null
  . "$CLUSTER/config"

  local t0=$SECONDS
  for ((i = 0; i < replicas; i++)); do
    : >"$(log_file "$i")"
    "$BIN" format "--cluster=$CLUSTER_ID" "--replica=$i" "--replica-count=$replicas" \
      "$(data_file "$i")" >>"$(log_file "$i")" 2>&1 ||
      { tail -n 20 "$(log_file "$i")" >&2; die "format of replica $i failed"; }
  done
  for ((i = 0; i < replicas; i++)); do start_replica_process "$i"; done
  if ! wait_ready 120; then
    die "the cluster did not answer within 120 s (logs: $CLUSTER/replica-*.log)"
  fi
  say "up: $replicas replica(s), cluster id $CLUSTER_ID, ready in $((SECONDS - t0)) s"
  printf '%s\n' "$addresses"
}

cmd_start_replica() {
  local i="${1:?usage: start-replica I}"
  load_config
  check_replica_index "$i"
  if replica_pid "$i" >/dev/null; then
    say "replica $i already runs (pid $(replica_pid "$i"))"
    return 0
  fi
  [ -f "$(data_file "$i")" ] || die "no data file for replica $i"
  start_replica_process "$i"
  sleep 0.3
  replica_pid "$i" >/dev/null || { tail -n 20 "$(log_file "$i")" >&2; die "replica $i exited at once"; }
  say "replica $i started (pid $(cat "$(pid_file "$i")"))"
}

cmd_kill_replica() {
  local i="${1:?usage: kill-replica I}" pid
  load_config
  check_replica_index "$i"
  if ! pid="$(replica_pid "$i")"; then
    say "replica $i is not running"
    return 0
  fi
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$(pid_file "$i")"
  say "replica $i killed (SIGKILL, pid $pid)"
}

# SIGTERM to every pid given, then wait for all of them (SIGKILL after 10 s).
stop_pids() {
  local pid n=0 alive
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  while :; do
    alive=0
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 1 ] || return 0
    n=$((n + 1))
    if [ $n -eq 100 ]; then
      for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
    fi
    sleep 0.1
  done
}

remove_cluster_files() {
  rm -f "$CLUSTER"/*.tigerbeetle "$CLUSTER"/*.pid "$CLUSTER/config"
}

cmd_down() {
  if [ ! -d "$CLUSTER" ]; then
    say "no cluster"
    return 0
  fi
  local file i pid pids=()
  for file in "$CLUSTER"/replica-*.pid; do
    [ -e "$file" ] || continue
    i="${file##*/replica-}"
    i="${i%.pid}"
    if pid="$(replica_pid "$i")"; then
      pids+=("$pid")
    fi
  done
  [ ${#pids[@]} -eq 0 ] || stop_pids "${pids[@]}"
  remove_cluster_files
  say "down: ${#pids[@]} replica(s) stopped, data files removed"
}

cmd_status() {
  if [ ! -f "$CLUSTER/config" ]; then
    echo "no cluster"
    return 0
  fi
  load_config
  local i pid running=0
  for ((i = 0; i < REPLICAS; i++)); do
    if pid="$(replica_pid "$i")"; then
      echo "replica $i: running (pid $pid, 127.0.0.1:$((PORT_BASE + i)))"
      running=$((running + 1))
    else
      echo "replica $i: stopped"
    fi
  done
  echo "addresses: $ADDRESSES ($running of $REPLICAS running)"
}

cmd_addresses() {
  load_config
  printf '%s\n' "$ADDRESSES"
}

cmd_env() {
  printf 'export ZIG_PATH=%q\n' "$ZIG"
}

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

main() {
  local cmd="${1:-}"
  [ $# -gt 0 ] && shift
  case "$cmd" in
    install) cmd_install "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    addresses) cmd_addresses "$@" ;;
    start-replica) cmd_start_replica "$@" ;;
    kill-replica) cmd_kill_replica "$@" ;;
    env) cmd_env "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 1 ;;
  esac
}

main "$@"
