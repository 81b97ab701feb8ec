#!/usr/bin/env bash
# Benchmark mirror:full and mirror:delta on synthetic OSV data (and, when
# present, the real corpus in ../shared/data or $EXPORT_CENTER_CORPUS).
#
#   bench/mirror.sh [N]       N synthetic advisories (default 20000)
#
# Env: SEED (default 1), JOBS (default nproc), LEVEL (the profile's
# compression-level; default: the kind's default), ROUNDS (rounds of 10
# changes, default 3; medians printed), BENCH_TMPDIR, BIN, NO_BUILD.
# Every figure is printed with a baseline measured in the same run:
#   full mirror build       vs  tar | zstd -19 -T0 of the same advisories (goal <= 1.3x)
#   delta after 10 changes  vs  a no-op build (time, goal <= 2x); its size vs
#                               the 10 changed documents through zstd -19 plus
#                               the signed metadata every delta carries (goal <= 2x)
#   mirror apply            vs  cp -a of the base (goal <= 1.5x)
#   peak RSS, full build    vs  256 MiB
set -euo pipefail

N="${1:-20000}"
SEED="${SEED:-1}"
JOBS="${JOBS:-$(nproc)}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$REPO/target/release/export-center}"
CORPUS="${EXPORT_CENTER_CORPUS:-$REPO/../shared/data}"
case "$N" in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac

TMP="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/export-center-mirror-bench.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
sub() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
minof() { python3 -c "import sys; print('%.3f' % min(map(float, sys.argv[1:])))" "$@"; }
medof() { python3 -c "import sys, statistics; print('%.3f' % statistics.median(map(float, sys.argv[1:])))" "$@"; }
jget() { python3 -c "import json,sys,functools; print(functools.reduce(lambda d, k: d[k], sys.argv[2].split('.'), json.load(open(sys.argv[1]))))" "$1" "$2"; }
elapsed() { local t0 t1; t0=$(now); "$@" >&2; t1=$(now); sub "$t0" "$t1"; }
dsize() { du -sb --apparent-size "$1" | cut -f1; }

log "building release binary"
[ -n "${NO_BUILD:-}" ] || (cd "$REPO" && cargo build --release --quiet)
echo "== machine: nproc $(nproc), $(free -m | awk '/^Mem:/ {print $2 " MiB"}'), $(uname -sr); N=$N seed=$SEED jobs=$JOBS level=${LEVEL:-default}"

# measure WS NAME SOURCES_TOML DATA_DIR INPUTS
measure() {
    local ws="$1" name="$2" data="$4"
    mkdir -p "$ws/keys"
    cp "$REPO/tests/fixtures/keys/TEST-ONLY-signing.key" "$ws/keys/k.key"; chmod 600 "$ws/keys/k.key"
    printf '[workspace]\n[signing]\nkey = "keys/k.key"\n%s\n[profiles.mirror]\nkind = "mirror:full"\ninputs = [%s]\nkeep-generations = 2\n%s[profiles.nightly]\nkind = "mirror:delta"\nbase = "mirror"\n' "$3" "$5" "${LEVEL:+compression-level = $LEVEL
}" > "$ws/profiles.toml"
    local epoch; epoch=$(date +%s)
    tar -C "$data" -cf - . > /dev/null   # warm the page cache for both sides
    local base full rss
    base=$(elapsed bash -c 'tar -C "$1" -cf - . | zstd -19 -T0 -q > /dev/null' _ "$data")
    full=$(elapsed bash -c 'SOURCE_DATE_EPOCH=$6 /usr/bin/time -v -o "$1" "$2" -C "$3" build --json --jobs "$4" > "$5"' _ "$TMP/time.txt" "$BIN" "$ws" "$JOBS" "$TMP/full.json" "$epoch")
    [ "$(jget "$TMP/full.json" ok)" = True ] || { log "build failed"; head -c 3000 "$TMP/full.json" >&2; exit 1; }
    rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$TMP/time.txt")
    local noop=()
    for _ in 1 2 3; do
        noop+=("$(elapsed bash -c 'SOURCE_DATE_EPOCH=$5 "$1" -C "$2" build --json --jobs "$3" > "$4"' _ "$BIN" "$ws" "$JOBS" "$TMP/noop.json" "$epoch")")
    done
    # ROUNDS rounds (default 3) of 10 changed advisories, spread over the
    # corpus (other ones each round): an incremental build, its delta, and
    # applying it to a copy of the generation before; medians are printed
    local incs=() dszs=() cps=() cpss=() aps=() recs meta r
    local all; all=$(find "$data" -type f -name '*.json' | wc -l)
    for r in $(seq 1 "${ROUNDS:-3}"); do
        rm -rf "$TMP/g1" "$TMP/site" "$TMP/changed" "$TMP/copy"; cp -a "$ws/out/mirror" "$TMP/g1"
        mapfile -t picks < <(find "$data" -type f -name '*.json' | sort | awk -v n="$all" -v r="$r" 'NR % int(n / 10 + 1) == r' | head -10)
        mkdir -p "$TMP/changed"
        local k=0
        for f in "${picks[@]}"; do
            k=$((k + 1))
            python3 - "$f" "$k" "$r" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1])); d["summary"] = str(d.get("summary", "")) + " (changed %s in round %s)" % (sys.argv[2], sys.argv[3])
open(sys.argv[1], "w").write(json.dumps(d, indent=2) + "\n")
EOF
            cp "$f" "$TMP/changed/$k.json"
        done
        incs+=("$(elapsed bash -c 'SOURCE_DATE_EPOCH=$5 "$1" -C "$2" build --json --jobs "$3" > "$4"' _ "$BIN" "$ws" "$JOBS" "$TMP/inc.json" "$((epoch + 60 * r))")")
        [ "$(jget "$TMP/inc.json" profiles.nightly.status)" = published ] || { log "no delta"; head -c 3000 "$TMP/inc.json" >&2; exit 1; }
        dszs+=("$(dsize "$ws/out/nightly")")
        cps+=("$(elapsed bash -c 'rm -rf "$2"; cp -a "$1" "$2"' _ "$TMP/g1" "$TMP/copy")")
        # apply ends durable (one syncfs); so does this copy
        cpss+=("$(elapsed bash -c 'rm -rf "$2"; sync -f "$1"; cp -a "$1" "$2" && sync -f "$2"' _ "$TMP/g1" "$TMP/copy")")
        # the site's base is on disk before apply starts (apply's syncfs would flush this copy too)
        cp -a "$TMP/g1" "$TMP/site" && sync -f "$TMP/site"
        aps+=("$(elapsed bash -c '"$1" mirror apply "$2" "$3" > /dev/null' _ "$BIN" "$TMP/site" "$ws/out/nightly")")
        diff -r "$TMP/site" "$ws/out/mirror" > /dev/null || { log "apply result differs from the full export"; exit 1; }
    done
    recs=$(tar -C "$TMP/changed" -cf - . | zstd -19 -q | wc -c)
    meta=0
    for f in export.json manifest.json provenance.json manifest.dsse.json provenance.dsse.json checksums.txt; do
        meta=$((meta + $(stat -c %s "$ws/out/mirror/$f")))
    done
    meta=$((meta + $(dsize "$ws/out/mirror/tuf/metadata")))
    local inc dsz cp_t cps_t ap_t
    inc=$(medof "${incs[@]}"); dsz=$(medof "${dszs[@]}" | cut -d. -f1)
    cp_t=$(medof "${cps[@]}"); cps_t=$(medof "${cpss[@]}"); ap_t=$(medof "${aps[@]}")
    log "rounds: build after changes ${incs[*]}; apply ${aps[*]}; cp -a ${cps[*]}; durable copy ${cpss[*]}"
    python3 - "$name" "$full" "$base" "$(minof "${noop[@]}")" "$inc" "$dsz" "$recs" "$meta" "$cp_t" "$ap_t" "$rss" "$cps_t" "$(jget "$TMP/full.json" inputs.documents)" "$(dsize "$ws/out/mirror")" "$(jget "$TMP/inc.json" steps.executed)/$(jget "$TMP/inc.json" steps.total)" <<'EOF'
import sys
name, full, base, noop, inc, dsz, recs, meta, cp_t, ap_t, rss, cps_t, docs, msz, steps = sys.argv[1:]
full, base, noop, inc, cp_t, ap_t, cps_t = map(float, (full, base, noop, inc, cp_t, ap_t, cps_t))
dsz, recs, meta, msz = int(dsz), int(recs), int(meta), int(msz)
rss = int(rss) / 1024
ok = lambda b: "yes" if b else "NO"
print()
print("== %s: %s documents -> mirror %.1f MiB (tree, tuf, oci, tar.zst)" % (name, docs, msz / 1048576))
print("| measurement | export-center | baseline | ratio | goal | met |")
print("|---|---|---|---|---|---|")
print("| full mirror build, empty cache | %.2f s | tar \\| zstd -19 -T0 %.2f s | %.2fx | <= 1.3x | %s |" % (full, base, full / base, ok(full / base <= 1.3)))
print("| build after 10 changes (full + delta), median of rounds | %.3f s | no-op build (best of 3) %.3f s | %.2fx | <= 2x | %s |" % (inc, noop, inc / noop, ok(inc / noop <= 2)))
print("| delta size | %.1f KiB | 10 docs zstd -19 %.1f KiB + metadata %.1f KiB | %.2fx | <= 2x | %s |" % (dsz / 1024, recs / 1024, meta / 1024, dsz / (recs + meta), ok(dsz <= 2 * (recs + meta))))
print("| mirror apply, median of rounds | %.3f s | cp -a of the base %.3f s | %.2fx | <= 1.5x | %s |" % (ap_t, cp_t, ap_t / cp_t, ok(ap_t <= 1.5 * cp_t)))
print("| mirror apply (same run) | %.3f s | durable copy: cp -a then sync -f %.3f s | %.2fx | (context) | - |" % (ap_t, cps_t, ap_t / cps_t))
print("| peak RSS, full build | %.0f MiB | limit 256 MiB | %.2fx | <= 256 MiB | %s |" % (rss, rss / 256, ok(rss <= 256)))
print("steps executed/total after 10 changes: %s" % steps)
EOF
}

log "generating $N advisories"
python3 "$REPO/bench/gen_osv.py" "$N" "$TMP/syn/src" --seed "$SEED" >&2
srcs=""; names=""
for d in "$TMP/syn/src"/*/; do
    e=$(basename "$d"); n=$(echo "$e" | tr -c 'a-zA-Z0-9\n' '_')
    srcs+=$(printf '[sources.%s]\nformat = "osv"\npath = "src/%s"\n' "$n" "$e")$'\n'
    names+="\"$n\", "
done
measure "$TMP/syn" "synthetic N=$N" "$srcs" "$TMP/syn/src" "${names%, }"

if [ -f "$CORPUS/osv/go-vulndb.tar.zst" ]; then
    mkdir -p "$TMP/real/src"
    for a in go-vulndb rustsec pypa bitnami-vulndb k8s-cve-feed-osv; do
        zstd -dc "$CORPUS/osv/$a.tar.zst" | tar -x -C "$TMP/real/src"
    done
    srcs=""; names=""
    for e in go-vulndb rustsec pypa bitnami-vulndb k8s-cve-feed-osv; do
        n=$(echo "$e" | tr -c 'a-zA-Z0-9\n' '_')
        srcs+=$(printf '[sources.%s]\nformat = "osv"\npath = "src/%s"\n' "$n" "$e")$'\n'
        names+="\"$n\", "
    done
    measure "$TMP/real" "real corpus" "$srcs" "$TMP/real/src" "${names%, }"
else
    echo "SKIP real corpus: not found at $CORPUS"
fi
