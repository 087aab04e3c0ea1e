#!/usr/bin/env bash
# Create (idempotently) a Python venv with the official MCP Python SDK, used by
# tests/interop/sdk_client.py to drive capmux over stdio.
#
#   bash tests/interop/setup.sh          # prints the venv python path last
#
# Location: ${CAPMUX_INTEROP_DIR:-<repo>/target/interop}/venv
set -euo pipefail

MCP_VERSION="2.3.0"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${script_dir}/../.." && pwd)"
interop_dir="${CAPMUX_INTEROP_DIR:-${repo_dir}/target/interop}"
venv_dir="${interop_dir}/venv"
py="${venv_dir}/bin/python"

have_mcp() {
    [ -x "${py}" ] || return 1
    "${py}" - "${MCP_VERSION}" >/dev/null 2>&1 <<'PYEOF'
import sys
from importlib.metadata import version
import mcp  # noqa: F401  (must be importable, not just installed)
sys.exit(0 if version("mcp") == sys.argv[1] else 1)
PYEOF
}

if ! have_mcp; then
    mkdir -p "${interop_dir}"
    if [ ! -x "${py}" ]; then
        python3 -m venv "${venv_dir}" >&2
    fi
    "${py}" -m pip install --disable-pip-version-check -q "mcp==${MCP_VERSION}" >&2
    if ! have_mcp; then
        echo "setup.sh: mcp==${MCP_VERSION} is not importable in ${venv_dir} after install" >&2
        exit 1
    fi
fi

echo "${py}"
