#!/usr/bin/env bash
# Benchmark the trivy:db profile on synthetic OSV data (and, when present,
# the real corpus in ../shared/data or $EXPORT_CENTER_CORPUS).
#
#   bench/trivy.sh [N]        N synthetic advisories (default 20000)
#
# Env: SEED (default 1), JOBS (default nproc), BENCH_TMPDIR.
# Every figure is printed with a baseline measured in the same run:
#   full build      vs  tar | gzip -6 of the same advisories (read + compress once)
#   one change      vs  the full build (goal <= 10 %)
#   peak RSS        vs  256 MiB
set -euo pipefail

N="${1:-20000}"
SEED="${SEED:-1}"
JOBS="${JOBS:-$(nproc)}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$REPO/target/release/export-center}"   # BIN=other-binary NO_BUILD=1: compare builds
CORPUS="${EXPORT_CENTER_CORPUS:-$REPO/../shared/data}"
case "$N" in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac

TMP="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/export-center-trivy-bench.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
sub() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
minof() { python3 -c "import sys; print('%.3f' % min(map(float, sys.argv[1:])))" "$@"; }
jget() { python3 -c "import json,sys,functools; print(functools.reduce(lambda d, k: d[k], sys.argv[2].split('.'), json.load(open(sys.argv[1]))))" "$1" "$2"; }
elapsed() { local t0 t1; t0=$(now); "$@" >&2; t1=$(now); sub "$t0" "$t1"; }

log "building release binary"
[ -n "${NO_BUILD:-}" ] || (cd "$REPO" && cargo build --release --quiet)
echo "== machine: nproc $(nproc), $(free -m | awk '/^Mem:/ {print $2 " MiB"}'), $(uname -sr); N=$N seed=$SEED jobs=$JOBS"

# measure WS NAME SOURCES_TOML DATA_DIR EDIT_GLOB
measure() {
    local ws="$1" name="$2" data="$4"
    mkdir -p "$ws"
    printf '[workspace]\nsource-date-epoch = 1735689600\n%s\n[profiles.db]\nkind = "trivy:db"\ninputs = [%s]\n' "$3" "$5" > "$ws/profiles.toml"
    tar -C "$data" -cf - . > /dev/null   # warm the page cache for both sides
    local base full rss db gz
    base=$(elapsed bash -c 'tar -C "$1" -cf - . | gzip -6 > /dev/null' _ "$data")
    full=$(elapsed bash -c '/usr/bin/time -v -o "$1" "$2" -C "$3" build --json --jobs "$4" > "$5"' _ "$TMP/time.txt" "$BIN" "$ws" "$JOBS" "$TMP/full.json")
    [ "$(jget "$TMP/full.json" ok)" = True ] || { log "build failed"; head -c 3000 "$TMP/full.json" >&2; exit 1; }
    rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$TMP/time.txt")
    gz=$(stat -c %s "$ws/out/db/db.tar.gz")
    db=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print([c for c in m['contents'] if c['path']=='trivy.db'][0]['bytes'], [c for c in m['contents'] if c['path']=='trivy.db'][0]['records'])" "$ws/out/db/manifest.json")
    # one changed advisory, three different files, best of 3
    local times=() steps=()
    mapfile -t picks < <(find "$ws/src" -type f -name '*.json' 2>/dev/null | sort | awk 'NR % 997 == 1' | head -3)
    local k=0
    for f in "${picks[@]}"; do
        k=$((k + 1))
        python3 - "$f" "$k" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); d["summary"] = str(d.get("summary", "")) + " (updated %s)" % sys.argv[2]
open(sys.argv[1], "w").write(json.dumps(d, indent=2) + "\n")
EOF
        times+=("$(elapsed bash -c '"$1" -C "$2" build --json --jobs "$3" > "$4"' _ "$BIN" "$ws" "$JOBS" "$TMP/inc.json")")
        steps+=("$(jget "$TMP/inc.json" steps.executed)/$(jget "$TMP/inc.json" steps.total)")
    done
    local inc="n/a"
    [ ${#times[@]} -gt 0 ] && inc=$(minof "${times[@]}")
    python3 - "$name" "$full" "$base" "$inc" "$rss" "$db" "$gz" "${steps[*]:-}" "$(jget "$TMP/full.json" inputs.documents)" <<'EOF'
import sys
name, full, base, inc, rss, db, gz, steps, docs = sys.argv[1:]
full, base = float(full), float(base)
dbb, rows = db.split()
rss = int(rss) / 1024
print()
print("== %s: %s advisories -> trivy.db %.1f MiB (%s advisory rows), db.tar.gz %.1f MiB" % (name, docs, int(dbb) / 1048576, rows, int(gz) / 1048576))
print("| measurement | export-center | baseline | ratio | goal | met |")
print("|---|---|---|---|---|---|")
print("| full build, empty cache | %.2f s | tar \\| gzip -6 %.2f s | %.2fx | - | - |" % (full, base, full / base))
if inc != "n/a":
    inc = float(inc)
    print("| one advisory changed (best of 3) | %.3f s | full build %.2f s | %.1f%% | <= 10%% | %s |" % (inc, full, 100 * inc / full, "yes" if inc / full <= 0.10 else "NO"))
print("| peak RSS, full build | %.0f MiB | limit 256 MiB | %.2fx | <= 256 MiB | %s |" % (rss, rss / 256, "yes" if rss <= 256 else "NO"))
if steps:
    print("one-change runs, steps executed/total: %s" % steps)
EOF
}

# ---------------------------------------------------------------- synthetic
log "generating $N advisories"
python3 "$REPO/bench/gen_osv.py" "$N" "$TMP/syn/src" --seed "$SEED" >&2
srcs="" ; names=""
for d in "$TMP/syn/src"/*/; do
    e=$(basename "$d"); n=$(echo "$e" | tr -c 'a-zA-Z0-9\n' '_')
    srcs+=$(printf '[sources.%s]\nformat = "osv"\npath = "src/%s"\n' "$n" "$e")$'\n'
    names+="\"$n\", "
done
measure "$TMP/syn" "synthetic N=$N" "$srcs" "$TMP/syn/src" "${names%, }"

# ---------------------------------------------------------------- real corpus
if [ -f "$CORPUS/osv/go-vulndb.tar.zst" ]; then
    mkdir -p "$TMP/real/src"
    for a in go-vulndb rustsec pypa bitnami-vulndb k8s-cve-feed-osv; do
        zstd -dc "$CORPUS/osv/$a.tar.zst" | tar -x -C "$TMP/real/src"
    done
    mkdir -p "$TMP/real/src/nodejs" && zstd -dc "$CORPUS/advisories/nodejs-security-wg-npm.tar.zst" | tar -x -C "$TMP/real/src/nodejs"
    srcs=""; names=""
    for e in go-vulndb rustsec pypa bitnami-vulndb k8s-cve-feed-osv; do
        n=$(echo "$e" | tr -c 'a-zA-Z0-9\n' '_')
        srcs+=$(printf '[sources.%s]\nformat = "osv"\npath = "src/%s"\n' "$n" "$e")$'\n'
        names+="\"$n\", "
    done
    srcs+=$(printf '[sources.nodejs]\nformat = "nodejs-advisory"\npath = "src/nodejs"\n')$'\n'
    names+="\"nodejs\""
    measure "$TMP/real" "real corpus" "$srcs" "$TMP/real/src" "$names"
else
    echo "SKIP real corpus: not found at $CORPUS"
fi
