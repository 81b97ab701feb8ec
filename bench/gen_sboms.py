#!/usr/bin/env python3
"""Generate N synthetic CycloneDX SBOMs (and a few OpenVEX documents) that
match the advisories of bench/gen_osv.py, for benchmarking json:policy.

    bench/gen_sboms.py N OUTDIR --advisories A [--seed S] [--vex-docs V]

Writes OUTDIR/sbom/app-<i>.cdx.json (CycloneDX 1.5 JSON, indent=2) and
OUTDIR/vex/<issuer>-<k>.openvex.json. A and S must be the N and --seed
given to gen_osv.py: the packages are gen_osv.py's (the same
`make_packages(seed, min(A, 3000))`), so components have advisories.

- Each SBOM has 100-200 components over PyPI, npm, Go, Maven and crates.io
  (as gen_osv.py spreads them), drawn with a Zipf-like popularity (s = 1.1
  over a seeded ranking of the packages): a few packages are in most SBOMs,
  the tail in only a handful, so a changed advisory of a tail package
  concerns few SBOMs.
- Versions are X.Y.Z with X < 6, like the advisories' bounds, so some fall
  inside the affected ranges and some outside; Go versions carry a `v`.
- Components have a `bom-ref` (their purl) and `metadata.component` (the
  application, no purl) depends on ~10 of them; ~20 % of the components
  depend on one or two that come after them (no cycles).
- OpenVEX: V documents (default 2) from two issuers, each with 40
  statements on advisories of packages the SBOMs hold (vulnerability name
  = the advisory's CVE alias, the OSV id as an alias; product = the purl
  without version, or with a version some SBOM has): not_affected, fixed,
  affected, under_investigation.

Deterministic: the same arguments give byte-identical files (SBOM i has its
own RNG seeded from (seed, i)). Only the standard library is used.
"""

import argparse
import bisect
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_osv  # noqa: E402

ZIPF_S = 1.1


def comp_version(rng, eco):
    v = "%d.%d.%d" % (rng.randrange(6), rng.randrange(20), rng.randrange(15))
    return "v" + v if eco[0] == "Go" else v


def component(eco, name, version):
    base = gen_osv.purl(eco, name)
    p = "%s@%s" % (base, version)
    c = {"type": "library", "bom-ref": p, "name": name, "version": version, "purl": p}
    if eco[0] == "npm" and name.startswith("@"):
        c["group"], c["name"] = name.split("/", 1)
    elif eco[0] == "Maven":
        g, a = name.split(":", 1)
        c["group"], c["name"] = g, a
    return c


def make_sbom(seed, i, packages, cum):
    rng = random.Random("sbom:%d:%d" % (seed, i))
    want = rng.randrange(100, 201)
    picked = []
    seen = set()
    total = cum[-1]
    tries = 0
    while len(picked) < min(want, len(packages)) and tries < 50 * want:
        tries += 1
        k = bisect.bisect_left(cum, rng.random() * total)
        if k not in seen:
            seen.add(k)
            picked.append(k)
    comps = []
    for k in sorted(picked):
        eco, name = packages[k]
        comps.append(component(eco, name, comp_version(rng, eco)))
    app = "app-%05d" % i
    deps = [{"ref": app, "dependsOn": sorted(c["bom-ref"] for c in rng.sample(comps, min(10, len(comps))))}]
    # acyclic: a component depends only on components after it (a cycle of
    # components no parentless one reaches makes policy-evaluate panic at
    # this commit: src/policy/vex.rs `blocked`, "a blocked path names its statement")
    for a, c in enumerate(comps[:-1]):
        if rng.random() < 0.2:
            others = [o["bom-ref"] for o in rng.sample(comps[a + 1:], min(2, len(comps) - a - 1))]
            deps.append({"ref": c["bom-ref"], "dependsOn": sorted(set(others))})
    serial = "urn:uuid:%08x-%04x-4%03x-8%03x-%012x" % (
        rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12), rng.getrandbits(48))
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": "2024-06-01T00:00:00Z",
            "tools": {"components": [{"type": "application", "name": "gen_sboms.py", "version": "1"}]},
            "component": {"type": "application", "bom-ref": app, "name": app, "version": "1.%d.0" % (i % 50)},
        },
        "components": comps,
        "dependencies": deps,
    }
    return doc


def make_vex(seed, k, n_adv, packages, used):
    """OpenVEX document k: statements on advisories of packages in `used`."""
    rng = random.Random("vex:%d:%d" % (seed, k))
    issuer = ["Example Corp PSIRT <psirt@example.com>", "Upstream Maintainers <security@example.org>"][k % 2]
    statements = []
    npkg = len(packages)
    tries = 0
    while len(statements) < 40 and tries < 10000:
        tries += 1
        # advisory i belongs to package i % npkg for i < npkg, else a random one: take i < npkg
        # and i + j*npkg candidates whose package is known by construction for j = 0 only
        i = rng.randrange(min(n_adv, npkg))
        if packages[i][1] not in used.get(packages[i][0][0], {}):
            continue
        _, text = gen_osv.make_advisory(seed, i, packages)
        adv = json.loads(text)
        eco, name = packages[i]
        base = gen_osv.purl(eco, name)
        versions = sorted(used[eco[0]][name])
        product = base if rng.random() < 0.5 else "%s@%s" % (base, rng.choice(versions))
        status = rng.choice(["not_affected", "not_affected", "fixed", "affected", "under_investigation"])
        st = {
            "vulnerability": {"name": adv["aliases"][0], "aliases": [adv["id"]]},
            "products": [{"@id": product}],
            "status": status,
        }
        if status == "not_affected":
            st["justification"] = rng.choice(
                ["vulnerable_code_not_in_execute_path", "vulnerable_code_not_present", "inline_mitigations_already_exist"])
        elif status == "affected":
            st["action_statement"] = "Upgrade to a fixed version."
        statements.append(st)
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://vex.example.com/bench/%d" % k,
        "author": issuer,
        "timestamp": "2024-06-%02dT00:00:00Z" % (k % 28 + 1),
        "version": 1,
        "statements": statements,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="number of SBOMs")
    ap.add_argument("outdir")
    ap.add_argument("--advisories", type=int, required=True, help="the N given to gen_osv.py")
    ap.add_argument("--seed", type=int, default=1, help="the --seed given to gen_osv.py")
    ap.add_argument("--vex-docs", type=int, default=2)
    a = ap.parse_args()
    npkg = max(1, min(a.advisories, 3000))
    packages = gen_osv.make_packages(a.seed, npkg)
    # popularity: a seeded ranking of the packages, weight 1/(rank+1)^s
    order = list(range(npkg))
    random.Random("popularity:%d" % a.seed).shuffle(order)
    weight = [0.0] * npkg
    for rank, k in enumerate(order):
        weight[k] = 1.0 / (rank + 1) ** ZIPF_S
    cum = []
    acc = 0.0
    for w in weight:
        acc += w
        cum.append(acc)
    os.makedirs(os.path.join(a.outdir, "sbom"), exist_ok=True)
    os.makedirs(os.path.join(a.outdir, "vex"), exist_ok=True)
    used = {}  # ecosystem -> name -> set of versions
    total = ncomp = 0
    for i in range(a.n):
        doc = make_sbom(a.seed, i, packages, cum)
        for c in doc["components"]:
            p = c["purl"]
            eco = next(e for e in gen_osv.ECOSYSTEMS if p.startswith("pkg:%s/" % e[2]))
            name = c["name"] if "group" not in c else ("%s/%s" % (c["group"], c["name"]) if eco[0] == "npm" else "%s:%s" % (c["group"], c["name"]))
            used.setdefault(eco[0], {}).setdefault(name, set()).add(c["version"])
        ncomp += len(doc["components"])
        data = (json.dumps(doc, indent=2) + "\n").encode()
        with open(os.path.join(a.outdir, "sbom", "app-%05d.cdx.json" % i), "wb") as f:
            f.write(data)
        total += len(data)
    for k in range(a.vex_docs):
        doc = make_vex(a.seed, k, a.advisories, packages, used)
        data = (json.dumps(doc, indent=2) + "\n").encode()
        with open(os.path.join(a.outdir, "vex", "bench-%d.openvex.json" % k), "wb") as f:
            f.write(data)
    print(
        "generated %d SBOMs (%d components, %d distinct packages, %d bytes) and %d VEX documents under %s"
        % (a.n, ncomp, sum(len(v) for v in used.values()), total, a.vex_docs, a.outdir),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
