//! The POSIX `verify-offline.sh` staged into every kit (see the parent module).

/// The script staged as `verify-offline.sh`: POSIX `sh`, `find`, `awk`
/// and `sha256sum` (GNU or busybox) only; reads only.
pub const SCRIPT_TEXT: &str = r#"#!/bin/sh
# verify-offline.sh: check this offline kit (export-center-offline-kit/v1)
# against its checksums.txt with POSIX sh, find, awk and sha256sum only
# (GNU coreutils or busybox). Run it from anywhere:
#   sh /media/kit/offline-kit/verify-offline.sh
# Exit 0: every file checksums.txt lists is there and matches, and no
# file is there that it does not list. Exit 1: a mismatch, a missing or
# an extra file, or a malformed checksums.txt. Exit 2: it cannot run.
# It only reads: the kit may be on read-only media.
# checksums.txt is not signed: to check the exports' signatures, run
#   export-center kit verify DIR --trust-root KEY.pub
set -u
case "$0" in
*/*) cd "${0%/*}" || exit 2 ;;
esac
if [ ! -f checksums.txt ]; then
    echo "verify-offline: no checksums.txt in $(pwd)" >&2
    exit 2
fi
if ! command -v sha256sum >/dev/null 2>&1; then
    echo "verify-offline: sha256sum is not on PATH" >&2
    exit 2
fi
version=$(awk -F'"' '$2 == "kitVersion" { print $4; exit }' manifest.json 2>/dev/null)
listed=$(awk 'END { print NR }' checksums.txt)
status=0
malformed=$(awk 'length($0) < 67 || substr($0, 1, 64) !~ /^[0-9a-f]+$/ || substr($0, 65, 2) != "  " { print "line " NR }' checksums.txt)
if [ -n "$malformed" ]; then
    printf 'MALFORMED checksums.txt %s\n' $malformed
    status=1
fi
report=$(sha256sum -c checksums.txt 2>&1)
sums=$?
failed=$(printf '%s\n' "$report" | awk '!/: OK$/ && NF > 0')
if [ "$sums" -ne 0 ] || [ -n "$failed" ]; then
    printf '%s\n' "$failed"
    status=1
fi
extra=$(find . ! -type d -print | awk '
    BEGIN { while ((getline line < "checksums.txt") > 0) listed[substr(line, 67)] = 1 }
    { sub(/^\.\//, ""); if ($0 != "checksums.txt" && !($0 in listed)) print "EXTRA " $0 ": not listed in checksums.txt" }')
if [ -n "$extra" ]; then
    printf '%s\n' "$extra"
    status=1
fi
if [ "$status" -eq 0 ]; then
    echo "verify-offline: OK: kit ${version:-?}: $listed files match checksums.txt, no extra files"
else
    echo "verify-offline: FAILED: kit ${version:-?}: see the lines above (checksums.txt lists $listed files)"
fi
exit "$status"
"#;
