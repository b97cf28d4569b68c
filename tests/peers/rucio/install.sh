#!/usr/bin/env bash
# Install the Rucio test peer's server venv (rucio 41.5.1 + gunicorn, exact pins from
# requirements.txt) and print its path on stdout (the only thing printed on stdout).
#
#   tests/peers/rucio/install.sh [VENV_DIR]
#
# VENV_DIR defaults to ${CARGO_TARGET_DIR:-<repo>/target}/peers/rucio-venv.
# Idempotent: a stamp file in the venv holds the sha256 of requirements.txt + the python version;
# when it matches, the script returns at once.  Otherwise the venv is rebuilt from scratch.
# Concurrent callers serialise on a lock file (flock) next to the venv.
# Prerequisites: python3 with the venv module (Debian: python3-venv) and network access to PyPI.
# Environment: PYTHON (default python3) picks the interpreter.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
venv=${1:-$target/peers/rucio-venv}
case $venv in /*) ;; *) venv=$PWD/$venv ;; esac
python=${PYTHON:-python3}
req=$here/requirements.txt

command -v "$python" >/dev/null || { echo "install.sh: $python not found" >&2; exit 1; }
pyver=$("$python" -c 'import sys; print(sys.version.split()[0], sys.platform)')
hash=$( { cat "$req"; echo "$pyver"; } | sha256sum | cut -d' ' -f1)
stamp=$venv/.sciauth-rucio-peer-stamp

fresh() { [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; }

if fresh; then echo "$venv"; exit 0; fi

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
if command -v flock >/dev/null; then flock 9; fi
if fresh; then echo "$venv"; exit 0; fi   # another caller built it while we waited

t0=$(date +%s)
echo "install.sh: building $venv (python $pyver)" >&2
rm -rf "$venv"
if ! "$python" -m venv "$venv" >&2; then
    echo "install.sh: '$python -m venv' failed (on Debian: apt-get install python3-venv)" >&2
    rm -rf "$venv"; exit 1
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2
# sanity: the server's entry points import
"$venv/bin/python" -c 'import rucio, gunicorn, werkzeug, cryptography, paramiko' >&2
echo "$hash" > "$stamp"
echo "install.sh: done in $(( $(date +%s) - t0 ))s" >&2
echo "$venv"
