#!/usr/bin/env bash
# Benchmark export-center against plain-tool baselines on synthetic OSV data.
#
#   bench/run.sh [N]          N advisories (default 20000; the goals are for up to 300000)
#
# Env: SEED (default 1), JOBS (default nproc), BENCH_TMPDIR (where the
# temporary workspace goes; default $TMPDIR or /tmp).
#
# Every figure is printed next to a baseline measured in the same run on the
# same data. The OS page cache is warm for both sides (the data was just
# generated and is read once more before measuring); "cold" means an empty
# export-center cache.
set -euo pipefail

N="${1:-20000}"
SEED="${SEED:-1}"
JOBS="${JOBS:-$(nproc)}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$REPO/target/release/export-center}"   # BIN=other-binary NO_BUILD=1: compare builds

case "$N" in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac

TMP="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/export-center-bench.XXXXXX")"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
sub() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
minof() { python3 -c "import sys; print('%.3f' % min(map(float, sys.argv[1:])))" "$@"; }
jget() { python3 -c "import json,sys,functools; print(functools.reduce(lambda d, k: d[k], sys.argv[2].split('.'), json.load(open(sys.argv[1]))))" "$1" "$2"; }

# elapsed CMD...: run CMD, print its wall time in seconds (CMD's stdout goes to stderr).
elapsed() {
    local t0 t1
    t0=$(now)
    "$@" >&2
    t1=$(now)
    sub "$t0" "$t1"
}

# best3 CMD...: best (minimum) wall time of 3 runs.
best3() {
    local a b c
    a=$(elapsed "$@"); b=$(elapsed "$@"); c=$(elapsed "$@")
    minof "$a" "$b" "$c"
}

# ---------------------------------------------------------------- tools
if ! /usr/bin/time -V >/dev/null 2>&1 && ! /usr/bin/time --version >/dev/null 2>&1; then
    log "installing GNU time"
    if [ "$(id -u)" = 0 ]; then apt-get install -y time >&2; else sudo apt-get install -y time >&2; fi
fi
for t in zstd tar find python3 cargo; do
    command -v "$t" >/dev/null || { log "missing tool: $t"; exit 1; }
done

log "building release binary"
[ -n "${NO_BUILD:-}" ] || (cd "$REPO" && cargo build --release --quiet)

# ---------------------------------------------------------------- machine
echo "== machine"
echo "nproc:   $(nproc)"
echo "cpu:     $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1 || true)"
echo "memory:  $(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
echo "kernel:  $(uname -sr)"
echo "fs:      $(df -hT "$TMP" | awk 'NR==2 {print $2 " on " $1}')"
echo "tools:   $(zstd --version | sed 's/^\*\*\* //; s/ \*\*\*$//; s/, by.*//'); $(tar --version | head -1); $("$BIN" --version 2>/dev/null || echo export-center)"
echo "params:  N=$N seed=$SEED jobs=$JOBS"

# ---------------------------------------------------------------- data
WS="$TMP/ws"
DATA="$WS/data"
mkdir -p "$WS"
log "generating $N advisories"
GEN_S=$(elapsed python3 "$REPO/bench/gen_osv.py" "$N" "$DATA" --seed "$SEED")
FILES=$(find "$DATA" -type f | wc -l)
BYTES=$(find "$DATA" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
cat >"$WS/profiles.toml" <<'EOF'
[workspace]
cache = "cache"
out = "out"

[sources.osv]
format = "osv"
path = "data"

[profiles.bench]
kind = "json:raw"
inputs = ["osv"]
compression-level = 19
EOF
echo "data:    $FILES files, $((BYTES / 1048576)) MiB ($BYTES bytes), generated in ${GEN_S}s"

build() { "$BIN" -C "$WS" build --json --jobs "$JOBS"; }
check_ok() {
    [ "$(jget "$1" ok)" = "True" ] || { log "build failed:"; head -c 2000 "$1" >&2; exit 1; }
}

# Warm the page cache so neither side pays for the first read from disk.
tar --sort=name -C "$WS" -cf - data >/dev/null

# ---------------------------------------------------------------- full build
log "baseline: tar | zstd -19 -T0"
TAR_S=$(elapsed bash -c 'set -o pipefail; tar --sort=name -C "$1" -cf - data | zstd -19 -T0 -q -c > "$2"' _ "$WS" "$TMP/x.tar.zst")
TAR_BYTES=$(stat -c %s "$TMP/x.tar.zst")

log "full build (empty cache)"
rm -rf "$WS/cache" "$WS/out"
FULL_S=$(elapsed bash -c '/usr/bin/time -v -o "$1" "$2" -C "$3" build --json --jobs "$4" > "$5"' _ \
    "$TMP/time.txt" "$BIN" "$WS" "$JOBS" "$TMP/full.json")
check_ok "$TMP/full.json"
RSS_KB=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$TMP/time.txt")
FULL_STEPS="$(jget "$TMP/full.json" steps.executed)/$(jget "$TMP/full.json" steps.total)"
FULL_READ=$(jget "$TMP/full.json" inputs.filesRead)
OUT_BYTES=$(stat -c %s "$WS/out/bench/bench.tar.zst")

# ---------------------------------------------------------------- no-op
log "no-op build x3"
build >"$TMP/noop.json"
check_ok "$TMP/noop.json"
NOOP_STEPS="$(jget "$TMP/noop.json" steps.executed)/$(jget "$TMP/noop.json" steps.total)"
NOOP_READ=$(jget "$TMP/noop.json" inputs.filesRead)
NOOP_S=$(best3 bash -c '"$1" -C "$2" build --json --jobs "$3" > /dev/null' _ "$BIN" "$WS" "$JOBS")
log "baseline: find -printf x3"
FIND_S=$(best3 bash -c 'find "$1" -printf "%s %T@\n" > /dev/null' _ "$DATA")

# ---------------------------------------------------------------- one change
# Three different advisories, one at a time; best of 3 rebuilds.
log "one-advisory rebuilds x3"
mapfile -t PICKS < <(find "$DATA" -type f -name '*.json' | sort | awk -v n="$FILES" 'NR == int(n/7)+1 || NR == int(n/2)+1 || NR == int(6*n/7)+1')
INC_TIMES=()
INC_STEPS=()
INC_READ=()
k=0
for f in "${PICKS[@]}"; do
    k=$((k + 1))
    python3 - "$f" "$k" <<'EOF'
import json, sys
p, k = sys.argv[1], sys.argv[2]
d = json.load(open(p))
d["summary"] = d["summary"] + " (updated %s)" % k
open(p, "w").write(json.dumps(d, indent=2) + "\n")
EOF
    t=$(elapsed bash -c '"$1" -C "$2" build --json --jobs "$3" > "$4"' _ "$BIN" "$WS" "$JOBS" "$TMP/inc.json")
    check_ok "$TMP/inc.json"
    INC_TIMES+=("$t")
    INC_STEPS+=("$(jget "$TMP/inc.json" steps.executed)/$(jget "$TMP/inc.json" steps.total)")
    INC_READ+=("$(jget "$TMP/inc.json" inputs.filesRead)")
done
INC_S=$(minof "${INC_TIMES[@]}")

# ---------------------------------------------------------------- report
python3 - "$N" "$JOBS" "$FULL_S" "$TAR_S" "$NOOP_S" "$FIND_S" "$INC_S" "$RSS_KB" \
    "$FULL_STEPS" "$FULL_READ" "$NOOP_STEPS" "$NOOP_READ" "${INC_STEPS[*]}" "${INC_READ[*]}" "${INC_TIMES[*]}" \
    "$OUT_BYTES" "$TAR_BYTES" <<'EOF'
import sys
(n, jobs, full, tar, noop, find, inc, rss_kb, full_steps, full_read, noop_steps, noop_read,
 inc_steps, inc_read, inc_times, out_bytes, tar_bytes) = sys.argv[1:]
full, tar, noop, find, inc = map(float, (full, tar, noop, find, inc))
rss = int(rss_kb) / 1024
rows = [
    ("full build, empty cache", "%.2f s" % full, "tar + zstd -19 -T0 %.2f s" % tar, full / tar, "<= 1.3x", full / tar <= 1.3),
    ("no-op build (best of 3)", "%.3f s" % noop, "find -printf      %.3f s" % find, noop / find, "<= 1.5x", noop / find <= 1.5),
    ("one advisory changed (best of 3)", "%.3f s" % inc, "full build        %.2f s" % full, inc / full, "<= 5%", inc / full <= 0.05),
    ("peak RSS, full build", "%.0f MiB" % rss, "limit             256 MiB", rss / 256, "<= 256 MiB", rss <= 256),
]
print()
print("== results, N=%s, --jobs %s" % (n, jobs))
print("| %-32s | %-14s | %-26s | %-7s | %-10s | %-4s |" % ("measurement", "export-center", "baseline", "ratio", "goal", "met"))
print("|%s|%s|%s|%s|%s|%s|" % ("-" * 34, "-" * 16, "-" * 28, "-" * 9, "-" * 12, "-" * 6))
for name, ours, base, ratio, goal, ok in rows:
    r = "%.1f%%" % (ratio * 100) if goal == "<= 5%" else "%.2fx" % ratio
    print("| %-32s | %-14s | %-26s | %-7s | %-10s | %-4s |" % (name, ours, base, r, goal, "yes" if ok else "NO"))
print()
print("steps executed/total: full %s (filesRead %s); no-op %s (filesRead %s); one-change runs %s (filesRead %s)"
      % (full_steps, full_read, noop_steps, noop_read, inc_steps, inc_read))
print("one-change rebuild times (s): %s" % inc_times)
print("output size: export-center %.1f MiB, tar|zstd -19 %.1f MiB" % (int(out_bytes) / 1048576, int(tar_bytes) / 1048576))
EOF
