# Sourced by the run.sh scripts that drive Python peers (tests/interop, tests/bench,
# vectors/capture): makes a venv from a pinned requirements file on first use, and again
# whenever that file changes.
#
#   ensure_venv VENV REQUIREMENTS LABEL WHAT

ensure_venv() {
  local venv=$1 requirements=$2 label=$3 what=$4
  local stamp="$venv/.requirements"
  if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "$label: installing $what into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
  fi
}
