#!/usr/bin/env python3
"""Independent, strict verifier of a signed export-center export folder.

usage: verify_export.py EXPORT_DIR PUBKEY_PEM

Uses only third-party code for the cryptography and the formats
(securesystemslib for DSSE and keys, in-toto-attestation for the in-toto
Statement v1 and SLSA Provenance v1 protobufs); it shares no code with
export-center. Checks:
  1. provenance.dsse.json: signature (securesystemslib Envelope.verify,
     threshold 1, keyid must be the key's default keyid), payloadType
     application/vnd.in-toto+json, payload parses strictly (unknown fields
     rejected) as a Statement v1 that validates, predicate parses strictly
     as SLSA Provenance v1 with buildType and builder.id; the payload is
     byte-identical to provenance.json.
  2. manifest.dsse.json: signature as above; payload is the canonical JSON
     (sorted keys, no whitespace) of manifest.json.
  3. subjects: every subject names a file of the folder (sub-folders such
     as an OCI layout included) with that sha256, and every artifact file
     (all but the metadata: checksums.txt, provenance.json, *.dsse.json,
     signatures/*.sig) is a subject.
  3b. signatures/*.sig (Trivy DB exports): base64 Ed25519 over the bundle
     named in manifest.json, verified with cryptography.
  4. checksums.txt lists every other file of the folder with its sha256,
     nothing more, nothing less.

exit 0 = verified, 1 = bad signature, 2 = malformed, 3 = files do not match.
"""
import base64
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib import exceptions as sse
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

INTOTO = "application/vnd.in-toto+json"
MANIFEST = "application/vnd.export-center.manifest+json"
METADATA = {"checksums.txt", "provenance.json", "manifest.dsse.json", "provenance.dsse.json"}


def fail(code, msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(code)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def envelope(path, key, payload_type):
    try:
        with open(path) as f:
            env = Envelope.from_dict(json.load(f))
    except Exception as e:
        fail(2, f"{path}: not a DSSE envelope: {type(e).__name__}: {e}")
    if not env.signatures or key.keyid not in env.signatures:
        fail(1, f"{path}: no signature with keyid {key.keyid}")
    try:
        env.verify([key], 1)
    except (sse.VerificationError, sse.UnverifiedSignatureError, ValueError) as e:
        fail(1, f"{path}: signature does not verify: {e}")
    if env.payload_type != payload_type:
        fail(2, f"{path}: payloadType {env.payload_type!r} != {payload_type!r}")
    print(f"ok   {os.path.basename(path)}: signature verified (keyid {key.keyid})")
    return env.payload


def main():
    if len(sys.argv) != 3:
        fail(2, "usage: verify_export.py EXPORT_DIR PUBKEY_PEM")
    folder, pub = sys.argv[1], sys.argv[2]
    with open(pub, "rb") as f:
        key = SSlibKey.from_crypto(load_pem_public_key(f.read()))

    stmt_bytes = envelope(os.path.join(folder, "provenance.dsse.json"), key, INTOTO)
    try:
        pb = json_format.Parse(stmt_bytes.decode("utf-8"), statement_pb2.Statement())
        Statement.copy_from_pb(pb).validate()
        stmt = json.loads(stmt_bytes)
        prov = json_format.Parse(json.dumps(stmt["predicate"]), provenance_pb2.Provenance())
    except Exception as e:
        fail(2, f"provenance payload is not a strict in-toto Statement v1 + SLSA v1: {type(e).__name__}: {e}")
    if stmt["predicateType"] != "https://slsa.dev/provenance/v1":
        fail(2, f"predicateType {stmt['predicateType']!r}")
    if not prov.build_definition.build_type or not prov.run_details.builder.id:
        fail(2, "SLSA v1 needs buildDefinition.buildType and runDetails.builder.id")
    with open(os.path.join(folder, "provenance.json"), "rb") as f:
        if f.read() != stmt_bytes:
            fail(3, "provenance.json is not the signed statement")
    print("ok   provenance.json: strict in-toto Statement v1, SLSA Provenance v1")

    manifest_payload = envelope(os.path.join(folder, "manifest.dsse.json"), key, MANIFEST)
    try:
        with open(os.path.join(folder, "manifest.json"), "rb") as f:
            manifest = json.loads(f.read())
    except Exception as e:
        fail(2, f"manifest.json: {e}")
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if canonical != manifest_payload:
        fail(3, "manifest.json does not match the signed manifest")
    print("ok   manifest.json: matches the signed manifest")

    files = []
    for base, dirs, names in os.walk(folder):
        for n in names:
            full = os.path.join(base, n)
            if os.path.islink(full) or not os.path.isfile(full):
                fail(3, f"{full}: not a regular file")
            files.append(os.path.relpath(full, folder))
    files.sort()
    subjects = {s["name"]: s["digest"]["sha256"] for s in stmt["subject"]}
    for name, digest in subjects.items():
        if name not in files:
            fail(3, f"subject {name} is missing")
        if sha256(os.path.join(folder, name)) != digest:
            fail(3, f"subject {name}: sha256 does not match")
    detached = [n for n in files if n.startswith("signatures/") and n.endswith(".sig")]
    for name in detached:
        with open(os.path.join(folder, name)) as f:
            sig = base64.b64decode(f.read().strip(), validate=True)
        with open(os.path.join(folder, manifest["bundle"]["path"]), "rb") as f:
            data = f.read()
        try:
            load_pem_public_key(open(pub, "rb").read()).verify(sig, data)
        except Exception as e:
            fail(1, f"{name}: does not verify {manifest['bundle']['path']}: {type(e).__name__}")
        print(f"ok   {name}: detached signature of {manifest['bundle']['path']} verified")
    for name in files:
        if name not in METADATA and name not in subjects and name not in detached:
            fail(3, f"{name}: not a provenance subject")
    print(f"ok   {len(subjects)} subject(s) match their files")

    listed = {}
    with open(os.path.join(folder, "checksums.txt")) as f:
        for line in f.read().splitlines():
            digest, _, name = line.partition("  ")
            listed[name] = digest
    if sorted(listed) != [n for n in files if n != "checksums.txt"]:
        fail(3, f"checksums.txt lists {sorted(listed)}, the folder holds {files}")
    for name, digest in listed.items():
        if sha256(os.path.join(folder, name)) != digest:
            fail(3, f"{name}: sha256 does not match checksums.txt")
    print(f"ok   checksums.txt: {len(listed)} file(s)")
    print("VERIFIED")


if __name__ == "__main__":
    main()
