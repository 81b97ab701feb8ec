#!/bin/sh
# verify-offline.sh: check this developer-portal kit (devportal-offline/v1)
# with POSIX sh, sed, awk, find and sha256sum only (GNU coreutils or
# busybox); to check a signature also mktemp, rm, base64, cmp, wc, tr, cat
# and openssl (3.x).
#
#   sh verify-offline.sh                  check the files against checksums.txt
#   sh verify-offline.sh PUBLIC_KEY.pem   ... and manifest.dsse.json's signature
#
# PUBLIC_KEY.pem is the publisher's Ed25519 public key (PEM, as
# `export-center keygen` writes KEY.pub); get it from the publisher by a
# channel you trust, never from the kit itself.
#
# Checks, in order:
#   1. checksums.txt's SHA-256 is manifest.json's bundleId;
#   2. every file checksums.txt lists is there and matches (sha256sum -c),
#      their number is manifest.json's totals.entryCount, and no file is
#      there that it does not list (besides the kit's own five);
#   3. with a key: manifest.dsse.json's payload is manifest.json byte for
#      byte, and its Ed25519 signature over the DSSE PAE
#      ("DSSEv1 <len type> <type> <len payload> <payload>") verifies with
#      `openssl pkeyutl -verify -rawin`. A key given to an unsigned kit is
#      a failure; a signed kit checked without a key says so.
# Exit 0: all checked and good. Exit 1: a mismatch, a missing or extra
# file, a bad signature. Exit 2: it cannot run (no checksums.txt, a tool
# or the key missing). It only reads the kit (temporary files go to
# $TMPDIR): the kit may be on read-only media.
set -u
key=${1:-}
if [ -n "$key" ]; then
    case "$key" in
    /*) ;;
    *) key="$(pwd)/$key" ;;
    esac
    if [ ! -f "$key" ]; then
        echo "verify-offline: public key $key: no such file" >&2
        exit 2
    fi
fi
case "$0" in
*/*) cd "${0%/*}" || exit 2 ;;
esac
for f in manifest.json checksums.txt; do
    if [ ! -f "$f" ]; then
        echo "verify-offline: no $f in $(pwd)" >&2
        exit 2
    fi
done
if ! command -v sha256sum >/dev/null 2>&1; then
    echo "verify-offline: sha256sum is not on PATH" >&2
    exit 2
fi
status=0
fail() {
    printf '%s\n' "$*"
    status=1
}
field() {
    sed -n "s/^  \"$1\": \"\\([^\"]*\\)\",\\{0,1\\}\$/\\1/p" manifest.json
}
version=$(field version)
if [ "$version" != "devportal-offline/v1" ]; then
    fail "MANIFEST manifest.json: version is \"$version\", not devportal-offline/v1"
fi
bundle_id=$(field bundleId)
set -- $(sha256sum < checksums.txt)
if [ "sha256:$1" != "$bundle_id" ]; then
    fail "MISMATCH checksums.txt: its sha256 is $1, manifest.json bundleId is ${bundle_id:-missing}"
fi
malformed=$(awk 'length($0) < 67 || substr($0, 1, 64) !~ /^[0-9a-f]+$/ || substr($0, 65, 2) != "  " { print "line " NR }' checksums.txt)
if [ -n "$malformed" ]; then
    fail "MALFORMED checksums.txt:" $malformed
fi
listed=$(awk 'END { print NR }' checksums.txt)
count=$(sed -n 's/^    "entryCount": \([0-9]*\),\{0,1\}$/\1/p' manifest.json)
if [ "$listed" != "$count" ]; then
    fail "MISMATCH checksums.txt lists $listed files, manifest.json totals.entryCount is ${count:-missing}"
fi
# an empty kit (a tree with no files) has an empty checksums.txt, which
# sha256sum -c refuses: there is nothing to check then
if [ "$listed" -gt 0 ]; then
    report=$(sha256sum -c checksums.txt 2>&1)
    sums=$?
    failed=$(printf '%s\n' "$report" | awk '!/: OK$/ && NF > 0')
    if [ "$sums" -ne 0 ] || [ -n "$failed" ]; then
        fail "$failed"
        [ -n "$failed" ] || fail "sha256sum -c checksums.txt failed"
    fi
fi
extra=$(find . ! -type d -print | awk '
    BEGIN {
        while ((getline line < "checksums.txt") > 0) listed[substr(line, 67)] = 1
        split("checksums.txt manifest.json manifest.dsse.json instructions-portable.txt verify-offline.sh", own, " ")
        for (i in own) listed[own[i]] = 1
    }
    { sub(/^\.\//, ""); if (!($0 in listed)) print "EXTRA " $0 ": not listed in checksums.txt" }')
if [ -n "$extra" ]; then
    fail "$extra"
fi
signature="unsigned"
if [ -f manifest.dsse.json ] && [ -z "$key" ]; then
    signature="signed, signature NOT checked (pass the publisher's public key: sh verify-offline.sh KEY.pem)"
elif [ ! -f manifest.dsse.json ] && [ -n "$key" ]; then
    fail "UNSIGNED a public key was given but the kit has no manifest.dsse.json"
    signature="missing"
elif [ -n "$key" ]; then
    for tool in openssl base64 cmp; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "verify-offline: $tool is not on PATH (needed to check manifest.dsse.json)" >&2
            exit 2
        fi
    done
    tmp=$(mktemp -d) || exit 2
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 2' HUP INT TERM
    env_field() {
        sed -n "/^ *\"$1\": *\"/{s/^ *\"$1\": *\"\\([^\"]*\\)\".*\$/\\1/p;q;}" manifest.dsse.json
    }
    ptype=$(env_field payloadType)
    env_field payload | base64 -d > "$tmp/payload" 2>/dev/null
    env_field sig | base64 -d > "$tmp/sig" 2>/dev/null
    if [ "$ptype" != "application/vnd.export-center.devportal-manifest+json" ]; then
        fail "SIGNATURE manifest.dsse.json: payloadType is \"$ptype\""
        signature="bad"
    elif ! cmp -s "$tmp/payload" manifest.json; then
        fail "SIGNATURE manifest.dsse.json: its payload is not this manifest.json"
        signature="bad"
    else
        len=$(wc -c < manifest.json | tr -d ' ')
        { printf 'DSSEv1 %s %s %s ' "${#ptype}" "$ptype" "$len"; cat manifest.json; } > "$tmp/pae"
        if openssl pkeyutl -verify -pubin -inkey "$key" -rawin -in "$tmp/pae" -sigfile "$tmp/sig" >/dev/null 2>&1; then
            signature="signature verified"
        else
            fail "SIGNATURE manifest.dsse.json: the Ed25519 signature does not verify with $key"
            signature="bad"
        fi
    fi
fi
if [ "$status" -eq 0 ]; then
    echo "verify-offline: OK: $bundle_id: $listed files match checksums.txt, no extra files; $signature"
else
    echo "verify-offline: FAILED: ${bundle_id:-?}: see the lines above ($signature)"
fi
exit "$status"
