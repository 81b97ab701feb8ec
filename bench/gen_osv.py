#!/usr/bin/env python3
"""Generate N synthetic OSV advisories for benchmarking export-center.

    bench/gen_osv.py N OUTDIR [--seed S] [--workers W]

Files are laid out as OUTDIR/<ecosystem>/<package>/<ID>.json, across PyPI,
npm, crates.io, Go and Maven, with a few thousand packages. Each advisory is
~1-2 KB of JSON (indent=2): id, modified, published, aliases, summary,
details, affected (package {ecosystem, name, purl}, ECOSYSTEM/SEMVER ranges,
versions), references, database_specific.

Deterministic: the same N and seed give byte-identical files, whatever the
number of workers (advisory i is generated from its own RNG seeded with
(seed, i); the package list comes from the seed alone). Only the standard
library is used.
"""

import argparse
import json
import os
import random
import sys
import time
from multiprocessing import Pool

ECOSYSTEMS = [
    # name, dir, purl type, id prefix, range type, weight
    ("PyPI", "PyPI", "pypi", "PYSEC", "ECOSYSTEM", 3),
    ("npm", "npm", "npm", "GHSA", "SEMVER", 4),
    ("crates.io", "crates.io", "cargo", "RUSTSEC", "SEMVER", 2),
    ("Go", "Go", "golang", "GO", "SEMVER", 2),
    ("Maven", "Maven", "maven", "GHSA", "ECOSYSTEM", 2),
]

WORDS = (
    "async auth base blob cache cli codec config core crypto data db dns "
    "event fast flow form graph grpc hash http image io json jwt kit lib log "
    "mail map mesh meta net oauth parse path pdf pool proto proxy query queue "
    "redis rest router rpc sax schema secure serde server session sql ssh "
    "stream sync tar task template text time tls token toml url util uuid "
    "vault web xml yaml zip"
).split()

ORGS = "acme apache example fastco globex initech openlab umbrella vandelay wayne".split()

VULN_KINDS = [
    ("Cross-site scripting", "does not escape user-controlled input before inserting it into generated HTML"),
    ("SQL injection", "builds a query by concatenating a caller-supplied identifier without quoting it"),
    ("Path traversal", "joins archive member names onto the destination directory without rejecting '..' components"),
    ("Denial of service", "uses a regular expression with catastrophic backtracking on crafted input"),
    ("Server-side request forgery", "follows redirects to internal addresses when fetching a user-supplied URL"),
    ("Authentication bypass", "compares the signature with a non-constant-time check and accepts an empty signature"),
    ("Uncontrolled resource consumption", "does not bound the size of decompressed data read from the network"),
    ("Prototype pollution", "merges untrusted objects recursively, including the __proto__ key"),
    ("Use after free", "returns a reference into a buffer that is freed when the iterator is dropped"),
    ("Improper certificate validation", "skips hostname verification when a custom CA bundle is configured"),
    ("XML external entity injection", "enables external entity resolution by default in its parser"),
    ("Integer overflow", "computes a buffer length with unchecked arithmetic on attacker-controlled headers"),
]

SENTENCES = [
    "An attacker who can control the input can exploit this remotely without authentication.",
    "Applications that only process trusted input are not affected.",
    "The issue was found by fuzzing and reported privately to the maintainers.",
    "Users should upgrade to the fixed version; no workaround is known.",
    "As a workaround, disable the affected option in the configuration.",
    "Exploitation requires a non-default configuration.",
    "The impact is limited to the availability of the process.",
    "Sensitive data from other requests may be disclosed in the response.",
    "The vulnerable code path is reachable through the public API.",
    "Earlier release lines are no longer maintained and will not receive a fix.",
]

REF_TYPES = ["ADVISORY", "FIX", "WEB", "REPORT", "PACKAGE", "ARTICLE"]

DAY = 86400
T_START = 1514764800  # 2018-01-01T00:00:00Z
T_END = 1735689600  # 2025-01-01T00:00:00Z
GHSA_ALPHABET = "23456789cfghjmpqrvwx"


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def make_packages(seed, count):
    """count (ecosystem-tuple, package name) pairs, deterministic from seed."""
    rng = random.Random("packages:%d" % seed)
    weighted = [e for e in ECOSYSTEMS for _ in range(e[5])]
    seen = set()
    out = []
    while len(out) < count:
        eco = rng.choice(weighted)
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        if eco[0] == "PyPI":
            name = "%s-%s" % (a, b) if a != b else a
        elif eco[0] == "npm":
            name = "@%s/%s-%s" % (rng.choice(ORGS), a, b) if rng.random() < 0.3 else "%s-%s" % (a, b)
        elif eco[0] == "crates.io":
            name = "%s_%s" % (a, b)
        elif eco[0] == "Go":
            name = "github.com/%s/%s%s" % (rng.choice(ORGS), a, b)
        else:
            name = "org.%s.%s:%s-%s" % (rng.choice(ORGS), a, a, b)
        key = (eco[0], name)
        if key in seen:
            # fall back to a numbered name so the loop always terminates
            name = "%s%d" % (name, len(out))
            key = (eco[0], name)
            if key in seen:
                continue
        seen.add(key)
        out.append((eco, name))
    return out


def purl(eco, name):
    t = eco[2]
    if t == "maven":
        g, a = name.split(":", 1)
        return "pkg:maven/%s/%s" % (g, a)
    if t == "npm" and name.startswith("@"):
        return "pkg:npm/%s" % name.replace("@", "%40", 1)
    return "pkg:%s/%s" % (t, name)


def pkg_dir(name):
    return name.replace("/", "_").replace(":", "_").replace("@", "")


def version(rng, major_max=5):
    return "%d.%d.%d" % (rng.randrange(major_max), rng.randrange(20), rng.randrange(15))


def vkey(v):
    return tuple(int(x) for x in v.split("."))


def advisory_id(eco, rng, i, year):
    p = eco[3]
    if p == "GHSA":
        parts = ["".join(rng.choice(GHSA_ALPHABET) for _ in range(4)) for _ in range(3)]
        # the index keeps ids unique across the whole corpus
        return "GHSA-%s-%s-%s%d" % (parts[0], parts[1], parts[2], i)
    if p == "PYSEC":
        return "PYSEC-%d-%d" % (year, i + 1)
    return "%s-%d-%04d" % (p, year, i + 1)


def make_advisory(seed, i, packages):
    rng = random.Random((seed << 32) ^ (i * 2654435761 + 1))
    eco, name = packages[i % len(packages)] if i < len(packages) else packages[rng.randrange(len(packages))]
    published = rng.randrange(T_START, T_END - 30 * DAY)
    modified = published + rng.randrange(0, 400 * DAY)
    if modified > T_END:
        modified = T_END - rng.randrange(DAY)
    year = int(rfc3339(published)[:4])
    vid = advisory_id(eco, rng, i, year)
    kind, what = rng.choice(VULN_KINDS)
    short = name.rsplit("/", 1)[-1].split(":")[-1]
    cve = "CVE-%d-%d" % (year, 10000 + i)
    aliases = [cve]
    if eco[3] != "GHSA" and rng.random() < 0.6:
        aliases.append("GHSA-%s-%s-%s" % tuple("".join(rng.choice(GHSA_ALPHABET) for _ in range(4)) for _ in range(3)))
    details = "%s %s. %s" % (
        "The %s function in %s" % (rng.choice(["parse", "decode", "load", "handle", "render", "open"]), short),
        what,
        " ".join(rng.sample(SENTENCES, rng.randrange(2, 5))),
    )

    affected = []
    for k in range(1 if rng.random() < 0.75 else 2):
        events = [{"introduced": "0" if rng.random() < 0.4 else version(rng)}]
        lo = vkey(events[0]["introduced"]) if events[0]["introduced"] != "0" else (0, 0, 0)
        fixed = version(rng, 6)
        while vkey(fixed) <= lo:
            fixed = "%d.%d.%d" % (lo[0] + 1, rng.randrange(5), rng.randrange(5))
        if rng.random() < 0.85:
            events.append({"fixed": fixed})
        else:
            events.append({"last_affected": fixed})
        entry = {
            "package": {"ecosystem": eco[0], "name": name, "purl": purl(eco, name)},
            "ranges": [{"type": eco[4], "events": events}],
        }
        if eco[4] == "ECOSYSTEM" and rng.random() < 0.5:
            base = lo if lo != (0, 0, 0) else (0, 1, 0)
            entry["versions"] = ["%d.%d.%d" % (base[0], base[1], p) for p in range(rng.randrange(1, 6))]
        if eco[0] == "Go":
            entry["ecosystem_specific"] = {
                "imports": [{"path": name, "symbols": sorted(rng.sample(["Parse", "Decode", "Handler.ServeHTTP", "Client.Do", "Open", "Reader.Read"], 2))}]
            }
        entry["database_specific"] = {"source": "https://example.org/osv/%s/%s.json" % (eco[1], vid)}
        affected.append(entry)

    refs = [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/%s" % cve}]
    for _ in range(rng.randrange(2, 5)):
        t = rng.choice(REF_TYPES)
        if t == "FIX":
            url = "https://github.com/%s/%s/commit/%040x" % (rng.choice(ORGS), pkg_dir(short), rng.getrandbits(160))
        else:
            url = "https://example.org/%s/%s/%d" % (t.lower(), pkg_dir(short), rng.randrange(100000))
        refs.append({"type": t, "url": url})

    doc = {
        "schema_version": "1.6.0",
        "id": vid,
        "modified": rfc3339(modified),
        "published": rfc3339(published),
        "aliases": aliases,
        "summary": "%s in %s" % (kind, name),
        "details": details,
        "affected": affected,
        "references": refs,
        "database_specific": {"severity": rng.choice(["LOW", "MODERATE", "HIGH", "CRITICAL"]), "cwe_ids": ["CWE-%d" % rng.randrange(20, 1000)]},
    }
    rel = os.path.join(eco[1], pkg_dir(name), vid + ".json")
    return rel, json.dumps(doc, indent=2) + "\n"


_G = {}


def _init(seed, packages, outdir):
    _G["seed"], _G["packages"], _G["outdir"] = seed, packages, outdir


def _write_range(bounds):
    lo, hi = bounds
    seed, packages, outdir = _G["seed"], _G["packages"], _G["outdir"]
    total = 0
    for i in range(lo, hi):
        rel, text = make_advisory(seed, i, packages)
        data = text.encode()
        with open(os.path.join(outdir, rel), "wb") as f:
            f.write(data)
        total += len(data)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="number of advisories")
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (does not affect output)")
    ap.add_argument("--packages", type=int, default=None, help="package count (default: min(N, 3000))")
    a = ap.parse_args()
    if a.n < 0:
        ap.error("N must be >= 0")
    npkg = a.packages if a.packages else max(1, min(a.n, 3000))
    packages = make_packages(a.seed, npkg)
    # Create the package folders up front. Advisory i < npkg goes to
    # package i, so every created folder gets at least one file.
    used = packages if a.n >= len(packages) else packages[: a.n]
    for eco, name in used:
        os.makedirs(os.path.join(a.outdir, eco[1], pkg_dir(name)), exist_ok=True)
    chunk = 2000
    ranges = [(lo, min(lo + chunk, a.n)) for lo in range(0, a.n, chunk)]
    if a.workers <= 1 or len(ranges) <= 1:
        _init(a.seed, packages, a.outdir)
        total = sum(_write_range(r) for r in ranges)
    else:
        with Pool(a.workers, initializer=_init, initargs=(a.seed, packages, a.outdir)) as pool:
            total = sum(pool.imap_unordered(_write_range, ranges))
    print(
        "generated %d advisories in %d packages, %d bytes (avg %d B) under %s"
        % (a.n, len(used), total, total // max(a.n, 1), a.outdir),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
