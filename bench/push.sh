#!/usr/bin/env bash
# Benchmark push and pull against a real registry (docker-registry on
# 127.0.0.1), with skopeo copying the same OCI layout as the baseline
# measured in the same run.
#
#   bench/push.sh [N]       N synthetic advisories (default 100000)
#
# Env: SEED (default 1), BENCH_TMPDIR, BIN, NO_BUILD, REGISTRY (default
# /usr/bin/docker-registry), SKOPEO (default /usr/bin/skopeo).
# Printed, for a trivy:db and a mirror:full built from the same advisories:
#   first push       vs  skopeo copy oci:LAYOUT docker://… (our push also
#                        sends the companion's files and the referrers)
#   second push      vs  skopeo copy of the same layout again (both skip
#                        every blob the registry holds)
#   pull             vs  skopeo copy docker://… oci:DIR (pull also fetches
#                        the referrers and writes every file of the export)
set -euo pipefail

N="${1:-100000}"
SEED="${SEED:-1}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-$REPO/target/release/export-center}"
REGISTRY="${REGISTRY:-/usr/bin/docker-registry}"
SKOPEO="${SKOPEO:-/usr/bin/skopeo}"
case "$N" in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac
for t in "$REGISTRY" "$SKOPEO"; do [ -x "$t" ] || { echo "bench/push.sh: $t is missing (scripts/test-deps.sh installs it)" >&2; exit 2; }; done

TMP="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/export-center-push-bench.XXXXXX")"
REG_PID=""
trap '[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
sub() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
medof() { python3 -c "import sys, statistics; print('%.3f' % statistics.median(map(float, sys.argv[1:])))" "$@"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / max(float(sys.argv[2]), 1e-9)))" "$1" "$2"; }
elapsed() { local t0 t1; t0=$(now); "$@" > /dev/null 2>&1 || { log "failed: $*"; exit 1; }; t1=$(now); sub "$t0" "$t1"; }

log "building release binary"
[ -n "${NO_BUILD:-}" ] || (cd "$REPO" && cargo build --release --quiet)
echo "== machine: nproc $(nproc), $(uname -sr); N=$N seed=$SEED"

python3 "$REPO/bench/gen_osv.py" "$N" "$TMP/ws/src" --seed "$SEED" >&2
mkdir -p "$TMP/ws/keys"
cp "$REPO/tests/fixtures/keys/TEST-ONLY-signing.key" "$TMP/ws/keys/k.key"; chmod 600 "$TMP/ws/keys/k.key"
{
    printf '[workspace]\nsource-date-epoch = 1735689600\n[signing]\nkey = "keys/k.key"\n'
    names=""
    for e in "$TMP"/ws/src/*/; do
        e=$(basename "$e"); n=$(echo "$e" | tr -c 'a-z0-9\n' '-')
        printf '[sources.%s]\nformat = "osv"\npath = "src/%s"\n' "$n" "$e"
        names="$names\"$n\", "
    done
    printf '[profiles.trivy-db]\nkind = "trivy:db"\ninputs = [%s]\n' "${names%, }"
    printf '[profiles.mirror]\nkind = "mirror:full"\ninputs = [%s]\n' "${names%, }"
} > "$TMP/ws/profiles.toml"
log "building trivy-db and mirror"
"$BIN" -C "$TMP/ws" build > /dev/null

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$TMP/reg" "$port" > "$TMP/reg.yml"
"$REGISTRY" serve "$TMP/reg.yml" > /dev/null 2>&1 &
REG_PID=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
R="127.0.0.1:$port"

for p in trivy-db mirror; do
    export_dir="$TMP/ws/out/$p"
    tag=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$export_dir/oci/index.json")
    size=$(du -sb --apparent-size "$export_dir" | cut -f1)
    files=$(find "$export_dir" -type f | wc -l)
    first=$(elapsed "$BIN" -C "$TMP/ws" push "$p" --to "$R/ec/$p" --insecure)
    sk_first=$(elapsed "$SKOPEO" copy --dest-tls-verify=false "oci:$export_dir/oci:$tag" "docker://$R/sk/$p:$tag")
    again=(); sk_again=(); pulls=(); sk_pulls=()
    for r in 1 2 3; do
        again+=("$(elapsed "$BIN" -C "$TMP/ws" push "$p" --to "$R/ec/$p" --insecure)")
        sk_again+=("$(elapsed "$SKOPEO" copy --dest-tls-verify=false "oci:$export_dir/oci:$tag" "docker://$R/sk/$p:$tag")")
        rm -rf "$TMP/pulled" "$TMP/skpulled"
        pulls+=("$(elapsed "$BIN" pull "oci://$R/ec/$p:$tag" --out "$TMP/pulled" --insecure)")
        sk_pulls+=("$(elapsed "$SKOPEO" copy --src-tls-verify=false "docker://$R/sk/$p:$tag" "oci:$TMP/skpulled:$tag")")
    done
    diff -r "$TMP/pulled" "$export_dir" > /dev/null || { log "pull of $p differs from the export"; exit 1; }
    a=$(medof "${again[@]}"); sa=$(medof "${sk_again[@]}"); pl=$(medof "${pulls[@]}"); spl=$(medof "${sk_pulls[@]}")
    echo "== $p: $files files, $size bytes, tag $tag"
    echo "first push      ${first}s  vs skopeo copy ${sk_first}s  = $(ratio "$first" "$sk_first")x"
    echo "second push     ${a}s  vs skopeo copy ${sa}s  = $(ratio "$a" "$sa")x (medians of 3)"
    echo "pull            ${pl}s  vs skopeo copy ${spl}s  = $(ratio "$pl" "$spl")x (medians of 3)"
done
