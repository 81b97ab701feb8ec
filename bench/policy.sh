#!/usr/bin/env bash
# Benchmark the json:policy profile: synthetic SBOMs against synthetic OSV
# advisories, then (when present) the real corpus's SBOMs against all its
# OSV advisories (../shared/data or $EXPORT_CENTER_CORPUS).
#
#   bench/policy.sh [N_ADVISORIES] [N_SBOMS]     defaults 100000 and 1000
#
# Env: SEED (default 1), JOBS (default nproc), BENCH_TMPDIR,
#      BIN=other-binary NO_BUILD=1 (compare builds), SKIP_REAL=1.
# Every figure is printed with a baseline measured in the same run:
#   full build      vs  tar | zstd -19 -T0 of the same inputs (read + compress once)
#   one change      vs  the full build (goal <= 5 %), best of 3 edits, for two edits:
#                   - summary: an advisory's `summary` (no index line changes:
#                     the rebuild should stop at policy-index)
#                   - range:   a range bound (the last number of its first `fixed`,
#                     `last_affected` or `introduced`) of an advisory whose
#                     findings are in the fewest SBOMs (from the full build's
#                     policy/evaluations.jsonl.zst): re-evaluates the SBOM
#                     shards holding its package
#   peak RSS        vs  256 MiB (/usr/bin/time -v of the full build)
# and how many policy-evaluate steps each rebuild executed (stepLog, status
# "executed", id prefix "evaluate:"), and the summed step wall times by
# action (stepLog durationMs; steps overlap with --jobs 2, so sums exceed
# the wall time).
set -euo pipefail

NADV="${1:-100000}"
NSBOM="${2:-1000}"
SEED="${SEED:-1}"
JOBS="${JOBS:-$(nproc)}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/export-center}"
CORPUS="${EXPORT_CENTER_CORPUS:-$REPO/../shared/data}"
case "$NADV$NSBOM" in '' | *[!0-9]*) echo "usage: $0 [N_ADVISORIES] [N_SBOMS]" >&2; exit 2 ;; esac

TMP="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/export-center-policy-bench.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
log() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
sub() { python3 -c "import sys; print('%.3f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
minof() { python3 -c "import sys; print('%.3f' % min(map(float, sys.argv[1:])))" "$@"; }
jget() { python3 -c "import json,sys,functools; print(functools.reduce(lambda d, k: d[k], sys.argv[2].split('.'), json.load(open(sys.argv[1]))))" "$1" "$2"; }
elapsed() { local t0 t1; t0=$(now); "$@" >&2; t1=$(now); sub "$t0" "$t1"; }
[ -x /usr/bin/time ] || { log "installing GNU time"; apt-get install -y -qq time >/dev/null; }

if [ -z "${NO_BUILD:-}" ]; then
    log "building release binary"
    (cd "$REPO" && cargo build --release --quiet)
fi
echo "== machine: nproc $(nproc), $(free -m | awk '/^Mem:/ {print $2 " MiB"}'), $(uname -sr); $("$BIN" --version 2>/dev/null || echo export-center); seed=$SEED jobs=$JOBS; $(date -u +%F)"

# Executed evaluate steps (all, and those of SBOM sources: names in
# $SBOM_SOURCES; an advisory shard's evaluate step re-runs, writing nothing,
# when its records change), executed/total steps, summed durationMs by action.
steplog() {
    python3 - "$1" "$SBOM_SOURCES" <<'EOF'
import json, sys, collections
r = json.load(open(sys.argv[1]))
sboms = sys.argv[2].split()
log = r.get("stepLog", [])
evs = [s for s in log if s["status"] == "executed" and s["id"].startswith("evaluate:")]
on_sboms = sum(1 for s in evs if s["id"].split(":", 1)[1].split("/")[1] in sboms)
ev = "%d (SBOM shards %d)" % (len(evs), on_sboms)
ex = collections.Counter(s["action"] for s in log if s["status"] == "executed")
ms = collections.Counter()
for s in log:
    if s["status"] == "executed":
        ms[s["action"]] += s.get("durationMs", 0)
top = ", ".join("%s %d x %.2f s" % (a, ex[a], ms[a] / 1000) for a, _ in ms.most_common(6))
print("%s\t%s/%s\t%s" % (ev, r["steps"]["executed"], r["steps"]["total"], top))
EOF
}

# Advisory ids by how few SBOMs hold their package (from the bundle's raw
# SBOM members), then by how few SBOMs have findings of them (evaluations):
# "id<TAB>SBOMs holding the package<TAB>SBOMs with a finding", rarest first.
rare_advisories() {
    local bundle="$1" dir="$2"
    mkdir -p "$dir"
    tar -C "$dir" --zstd -xf "$bundle" --wildcards 'policy/evaluations.jsonl.zst' 'sboms/*'
    python3 - "$dir" <<'EOF'
import collections, glob, json, os, re, subprocess, sys
d = sys.argv[1]
base = lambda p: re.split(r"[@?#]", p.split(":", 1)[1], maxsplit=1)[0] if p.startswith("pkg:") else p
held = collections.defaultdict(set)
for m in glob.glob(os.path.join(d, "sboms", "**", "*.jsonl"), recursive=True):
    for l in open(m, encoding="utf-8"):
        r = json.loads(l)
        doc, subj = r.get("document") or {}, r.get("path", "")
        if not isinstance(doc, dict):
            continue
        purls = [c.get("purl") for c in doc.get("components") or [] if isinstance(c, dict)]
        purls.append(((doc.get("metadata") or {}).get("component") or {}).get("purl"))
        for p in doc.get("packages") or []:
            for x in p.get("externalRefs") or []:
                if x.get("referenceType") == "purl":
                    purls.append(x.get("referenceLocator"))
        for p in purls:
            if isinstance(p, str):
                held[base(p)].add((m, subj))
subj = collections.defaultdict(set)
pk = collections.defaultdict(set)
ev = subprocess.run(["zstd", "-qdc", os.path.join(d, "policy", "evaluations.jsonl.zst")], capture_output=True, check=True).stdout
for l in ev.splitlines():
    e = json.loads(l)
    for i in {e["advisory"], e["vulnerability"], *e.get("aliases", [])}:
        subj[i].add(e["subject"]); pk[i].add(base(e["purl"]))
rows = [(max(len(held.get(b, ())) for b in pk[i]), len(s), i) for i, s in subj.items()]
for h, n, i in sorted(rows):
    print("%s\t%d\t%d" % (i, h, n))
EOF
}

# edit FILE KIND K: change one advisory file in place (KIND summary | range)
edit() {
    python3 - "$1" "$2" "$3" <<'EOF'
import json, re, sys
path, kind, k = sys.argv[1:]
d = json.load(open(path))
if kind == "summary":
    d["summary"] = str(d.get("summary", "")) + " (updated %s)" % k
else:
    done = False
    for a in d.get("affected", []):
        for r in a.get("ranges", []):
            evs = r.get("events", [])
            for key in ("fixed", "last_affected", "introduced"):
                for e in evs:
                    if key in e and re.search(r"\d", e[key]) and not (key == "introduced" and e[key] == "0"):
                        e[key] = re.sub(r"(\d+)(?!.*\d)", lambda m: str(int(m.group(1)) + 1), e[key])
                        done = True
                        break
                if done: break
            if done: break
        if done: break
    if not done:
        sys.exit("no range bound to change in %s" % path)
open(path, "w").write(json.dumps(d, indent=2) + "\n")
EOF
}

# measure NAME WS DATA BUILD_ARGS BASELINE_CMD
#   WS holds profiles.toml; DATA the advisory files to edit; BASELINE_CMD a
#   bash command compressing the same inputs (run with bash -c).
measure() {
    local name="$1" ws="$2" data="$3" args="$4" basecmd="$5"
    log "== $name: baseline"
    local base full rss
    base=$(elapsed bash -c "$basecmd")
    log "== $name: full build"
    # shellcheck disable=SC2086
    full=$(elapsed bash -c '/usr/bin/time -v -o "$1" "$2" -C "$3" build --json --jobs "$4" $5 > "$6"' _ "$TMP/time.txt" "$BIN" "$ws" "$JOBS" "$args" "$TMP/full.json")
    [ "$(jget "$TMP/full.json" ok)" = True ] || { log "build failed"; head -c 3000 "$TMP/full.json" >&2; exit 1; }
    rss=$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$TMP/time.txt")
    local fullsteps bundle
    fullsteps=$(steplog "$TMP/full.json")
    bundle="$ws/out/policy/policy.tar.zst"
    local stats
    stats=$(python3 - "$ws/out/policy/manifest.json" "$bundle" <<'EOF'
import json, os, sys
m = json.load(open(sys.argv[1]))
c = {e["path"]: e for e in m.get("contents", [])}
ev = c.get("policy/evaluations.jsonl.zst", {}).get("records", 0)
su = c.get("policy/summary.jsonl", {}).get("records", 0)
co = c.get("consensus/vex_consensus.jsonl.zst", {}).get("records", 0)
print("bundle %.1f MiB; %s SBOMs evaluated, %s findings, %s with VEX statements" % (os.path.getsize(sys.argv[2]) / 1048576, su, ev, co))
EOF
)
    # the JSON advisory files by id (file name without .json)
    python3 - "$data" > "$TMP/files.tsv" <<'EOF'
import os, sys
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        if f.endswith(".json"):
            print("%s\t%s" % (f[:-5], os.path.join(root, f)))
EOF
    rare_advisories "$bundle" "$TMP/x" > "$TMP/rare.tsv"
    local kind results=""
    for kind in summary range; do
        local picks=()
        if [ "$kind" = summary ]; then
            mapfile -t picks < <(sort "$TMP/files.tsv" | awk -F'\t' 'NR % 997 == 1 {print $2}' | head -3)
        else
            # the three advisories whose package is in the fewest SBOMs (then
            # with findings in the fewest) that have a file
            mapfile -t picks < <(python3 - "$TMP/files.tsv" "$TMP/rare.tsv" <<'EOF'
import sys
files = dict(l.rstrip("\n").split("\t", 1) for l in open(sys.argv[1]))
out, seen = [], set()
for l in open(sys.argv[2]):
    i, h, n = l.rstrip("\n").split("\t")
    f = files.get(i)
    if f and f not in seen:
        seen.add(f); out.append("%s\t%s/%s" % (f, h, n))
    if len(out) == 3: break
print("\n".join(out))
EOF
)
        fi
        local times=() evals=() stepsx=() subjects=() k=0 p f n last=""
        for p in "${picks[@]}"; do
            [ -n "$p" ] || continue
            f="${p%%$'\t'*}"; n="${p#*$'\t'}"; [ "$n" = "$p" ] && n="-"
            k=$((k + 1))
            edit "$f" "$kind" "$k"
            # shellcheck disable=SC2086
            times+=("$(elapsed bash -c '"$1" -C "$2" build --json --jobs "$3" $4 > "$5"' _ "$BIN" "$ws" "$JOBS" "$args" "$TMP/inc.json")")
            [ "$(jget "$TMP/inc.json" ok)" = True ] || { log "rebuild failed"; head -c 3000 "$TMP/inc.json" >&2; exit 1; }
            last=$(steplog "$TMP/inc.json")
            evals+=("$(cut -f1 <<< "$last")"); stepsx+=("$(cut -f2 <<< "$last")"); subjects+=("$n")
            log "   $kind edit $k ($(basename "$f"), package in/finding in $n SBOMs): ${times[-1]} s, $(cut -f3 <<< "$last")"
        done
        local inc="n/a"
        [ ${#times[@]} -gt 0 ] && inc=$(minof "${times[@]}")
        results+="$kind|$inc|${times[*]:-}|${evals[*]:-}|${stepsx[*]:-}|${subjects[*]:-}|$(cut -f3 <<< "$last")"$'\n'
    done
    python3 - "$name" "$full" "$base" "$rss" "$stats" "$fullsteps" "$results" <<'EOF'
import sys
name, full, base, rss, stats, fullsteps, results = sys.argv[1:]
full, base = float(full), float(base)
rss = int(rss) / 1024
ev, steps, top = fullsteps.split("\t")
print()
print("== %s: %s" % (name, stats))
print("| measurement | export-center | baseline | ratio | goal | met |")
print("|---|---|---|---|---|---|")
print("| full build, empty cache | %.2f s | tar \\| zstd -19 -T0 %.2f s | %.2fx | - | - |" % (full, base, full / base))
rows = [r.split("|") for r in results.strip().split("\n")]
for kind, inc, times, evals, stepsx, subjects, _ in rows:
    if inc == "n/a":
        continue
    inc = float(inc)
    print("| one advisory changed: %s (best of 3) | %.3f s | full build %.2f s | %.1f%% | <= 5%% | %s |"
          % (kind, inc, full, 100 * inc / full, "yes" if inc / full <= 0.05 else "NO"))
print("| peak RSS, full build | %.0f MiB | limit 256 MiB | %.2fx | <= 256 MiB | %s |" % (rss, rss / 256, "yes" if rss <= 256 else "NO"))
print("full build: steps %s, evaluate steps %s; summed step time by action: %s" % (steps, ev, top))
for kind, inc, times, evals, stepsx, subjects, top in rows:
    print("%s edits: rebuilds %s s; steps executed/total %s; policy-evaluate executed %s; package in/finding in %s SBOMs; last rebuild by action: %s"
          % (kind, times, stepsx, evals, subjects, top))
EOF
}

# ---------------------------------------------------------------- synthetic
S="$TMP/syn"
log "generating $NADV advisories and $NSBOM SBOMs"
python3 "$REPO/bench/gen_osv.py" "$NADV" "$S/src/osv" --seed "$SEED" >&2
python3 "$REPO/bench/gen_sboms.py" "$NSBOM" "$S/src" --advisories "$NADV" --seed "$SEED" >&2
{
    printf '[workspace]\nsource-date-epoch = 1735689600\n'
    names=""
    for d in "$S/src/osv"/*/; do
        e=$(basename "$d"); n=osv_$(echo "$e" | tr -c 'a-zA-Z0-9\n' '_')
        printf '[sources.%s]\nformat = "osv"\npath = "src/osv/%s"\n' "$n" "$e"
        names+="\"$n\", "
    done
    # shards = 50: the SBOM source's shards are the evaluation granularity
    # (policy-slice and policy-evaluate run per SBOM shard); automatic
    # sharding would put 1,000 SBOMs in 2 shards, so one changed advisory
    # would re-evaluate half of them. 50 shards = ~20 SBOMs per step.
    printf '[sources.sboms]\nformat = "cyclonedx"\npath = "src/sbom"\nshards = 50\n'
    printf '[sources.vex]\nformat = "openvex"\npath = "src/vex"\n'
    printf '[profiles.policy]\nkind = "json:policy"\ninputs = [%s"sboms", "vex"]\n' "$names"
} > "$S/profiles.toml"
tar -C "$S/src" -cf - . > /dev/null   # warm the page cache for both sides
SBOM_SOURCES="sboms"
measure "synthetic: $NSBOM SBOMs x $NADV advisories" "$S" "$S/src/osv" "" \
    "tar -C '$S/src' -cf - . | zstd -q -19 -T0 > /dev/null"

# ---------------------------------------------------------------- real corpus
if [ -z "${SKIP_REAL:-}" ] && [ -f "$CORPUS/sbom/cyclonedx/bom-examples-sbom.tar.zst" ]; then
    R="$TMP/real"
    mkdir -p "$R/src"
    {
        printf '[workspace]\nsource-date-epoch = 1735689600\n'
        printf '[sources.cdx]\nformat = "cyclonedx"\npath = "%s"\n' "$CORPUS/sbom/cyclonedx/bom-examples-sbom.tar.zst"
        printf '[sources.spdx]\nformat = "spdx"\npath = "%s"\n' "$CORPUS/sbom/spdx/spdx-examples.tar.zst"
        names='"cdx", "spdx"'
        for a in "$CORPUS"/osv/*.tar.zst; do
            e=$(basename "$a" .tar.zst); n=$(echo "$e" | tr -c 'a-zA-Z0-9\n' '_')
            # unpacked, so that one advisory can be edited in place
            mkdir -p "$R/src/$e" && zstd -qdc "$a" | tar -x -C "$R/src/$e"
            printf '[sources.%s]\nformat = "osv"\npath = "src/%s"\n' "$n" "$e"
            # the data sources tests/policy_trivy.rs gives these
            case "$e" in
                go-vulndb) printf 'data-source = { id = "govulndb", name = "The Go Vulnerability Database", url = "https://example.invalid/govulndb" }\n' ;;
                pypa) printf 'data-source = { id = "pypa", name = "PyPA Advisory Database", url = "https://example.invalid/pypa" }\n' ;;
                ghsa) printf 'data-source = { id = "ghsa", name = "GitHub Security Advisory", url = "https://example.invalid/ghsa" }\n' ;;
                rustsec) printf 'data-source = { id = "rustsec", name = "RustSec Advisory Database", url = "https://example.invalid/rustsec" }\n' ;;
            esac
            names+=", \"$n\""
        done
        printf '[profiles.policy]\nkind = "json:policy"\ninputs = [%s]\n' "$names"
    } > "$R/profiles.toml"
    tar -C "$R/src" -cf - . > /dev/null
    SBOM_SOURCES="cdx spdx"
    # some corpus files are not SBOMs: --allow-invalid lists them in rejected[]
    measure "real corpus (bom-examples CycloneDX + spdx-examples vs all osv/*.tar.zst)" "$R" "$R/src" "--allow-invalid" \
        "{ tar -C '$R/src' -cf - .; zstd -qdc '$CORPUS/sbom/cyclonedx/bom-examples-sbom.tar.zst'; zstd -qdc '$CORPUS/sbom/spdx/spdx-examples.tar.zst'; } | zstd -q -19 -T0 > /dev/null"
else
    echo "SKIP real corpus: not found at $CORPUS (or SKIP_REAL set)"
fi
