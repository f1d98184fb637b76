#!/usr/bin/env bash
# Create .venv in the repository and install the project with its test extra: pip install -e '.[test]'.
# Fast when nothing changed: a stamp in .venv records the hash of pyproject.toml, this script and the interpreter;
# the install runs again only when one of them changes (or RING_REINSTALL=1).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

VENV="$REPO_ROOT/.venv"
STAMP="$VENV/.ring-actors-install.stamp"
[[ -f pyproject.toml ]] || die "pyproject.toml not found in $REPO_ROOT"

usable() {  # PYTHON: 3.11 or newer, with venv and ensurepip
    "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

pick_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.11 python3 /usr/bin/python3.11 /usr/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 && usable "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ -x $VENV/bin/python ]] && usable "$VENV/bin/python"; then
    PY="$VENV/bin/python"
else
    if ! base=$(pick_python); then
        if [[ $(id -u) -eq 0 ]]; then
            log "no Python >= 3.11 with venv: installing python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq python3 python3-venv
        fi
        base=$(pick_python) || die "need Python >= 3.11 with the venv module (set PYTHON=/path/to/python3.11)"
    fi
    log "creating $VENV with $base ($("$base" -c 'import sys; print(sys.version.split()[0])'))"
    rm -rf "$VENV"
    "$base" -m venv "$VENV"
    PY="$VENV/bin/python"
fi

want=$( { sha256sum pyproject.toml "${BASH_SOURCE[0]}"; "$PY" -c 'import sys; print(sys.version)'; } \
        | sha256sum | cut -c1-64)
if [[ ${RING_REINSTALL:-0} != 1 && -f $STAMP && $(<"$STAMP") == "$want" ]]; then
    log ".venv is up to date ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
    exit 0
fi

rm -f "$STAMP"
log "pip install -e '.[test]' into .venv"
"$PY" -m pip install --quiet --disable-pip-version-check -e '.[test]'
echo "$want" >"$STAMP"
log ".venv ready"
