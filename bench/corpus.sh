#!/usr/bin/env bash
# Bundle size on the real corpus: the json:raw bundle of all 14 sources of
# ../shared/data against one zstd stream of the same tar.
#
#   bench/corpus.sh [DATA]     DATA defaults to $EXPORT_CENTER_CORPUS or ../shared/data
#
# Prints the bundle size, the baseline `zstd -dc BUNDLE | zstd -19` (one
# stream of the identical tar, zstd's default level-19 window), their
# ratio (goal <= 1.2x), the member count and the build time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="${1:-${EXPORT_CENTER_CORPUS:-$REPO/../shared/data}}"
BIN="${BIN:-$REPO/target/release/export-center}"
[ -d "$DATA/osv" ] || { echo "no corpus at $DATA (pass DATA or set EXPORT_CENTER_CORPUS)" >&2; exit 2; }
DATA="$(cd "$DATA" && pwd)"
for t in zstd tar python3; do command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }; done
if [ -z "${NO_BUILD:-}" ]; then (cd "$REPO" && cargo build --release --quiet); fi

TMP="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/export-center-corpus.XXXXXX")"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$TMP"' EXIT

# the sources of tests/cli.rs real_corpus_builds_and_records_match_documents
{
    printf '[workspace]\nsource-date-epoch = 1735689600\n'
    while read -r name format rel glob exclude; do
        printf '[sources.%s]\nformat = "%s"\npath = "%s/%s"\ninclude = ["%s"]\n' \
            "$name" "$format" "$DATA" "$rel" "$glob"
        [ "$exclude" = - ] || printf 'exclude = ["%s"]\n' "$exclude"
        names="${names:+$names, }\"$name\""
    done <<'EOF'
go osv osv/go-vulndb.tar.zst **/*.json -
rustsec osv osv/rustsec.tar.zst **/*.json -
pypa osv osv/pypa.tar.zst **/*.json -
bitnami osv osv/bitnami-vulndb.tar.zst **/*.json -
k8s osv osv/k8s-cve-feed-osv.tar.zst **/*.json -
loopback osv osv/npm-loopback **/*.json -
vexhub openvex vex/openvex/vexhub.tar.zst **/*.openvex.json -
openvex openvex vex/openvex **/*.json vexhub-sample/**
csaf csaf vex/csaf **/*.json -
cdx-vex cyclonedx vex/cyclonedx/bom-examples-vex.tar.zst **/*.json -
cdx-vex-spec cyclonedx vex/cyclonedx/spec-tests **/*.json -
cdx-sbom cyclonedx sbom/cyclonedx/bom-examples-sbom.tar.zst **/*.json -
cdx-sbom-spec cyclonedx sbom/cyclonedx/spec-tests **/*.json -
spdx spdx sbom/spdx/spdx-examples.tar.zst **/*.json -
EOF
    printf '[profiles.corpus]\nkind = "json:raw"\ninputs = [%s]\n' "$names"
} > "$TMP/profiles.toml"

t0=$(date +%s.%N)
"$BIN" -C "$TMP" build --json > "$TMP/report.json"
t1=$(date +%s.%N)
B="$TMP/out/corpus/corpus.tar.zst"
ours=$(stat -c %s "$B")
base=$(zstd -dc "$B" | zstd -19 -c | wc -c)
members=$(zstd -dc "$B" | tar -t | wc -l)
plain=$(zstd -dc "$B" | wc -c)
python3 - "$ours" "$base" "$members" "$plain" "$t0" "$t1" <<'EOF'
import sys
ours, base, members, plain = map(int, sys.argv[1:5])
t = float(sys.argv[6]) - float(sys.argv[5])
print(f"real corpus: tar {plain/2**20:.1f} MiB in {members} members; bundle {ours/2**20:.2f} MiB, "
      f"zstd -19 of the same tar {base/2**20:.2f} MiB: ratio {ours/base:.3f}x (goal <= 1.2x); build {t:.1f} s")
EOF
