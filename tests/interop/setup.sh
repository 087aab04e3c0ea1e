#!/usr/bin/env bash
# Install (idempotently) what the interop tests drive or aggregate:
#   - a Python venv with the official MCP Python SDK (tests/interop/sdk_client.py and
#     tests/interop/children_client.py drive capmux with it over stdio), plus the
#     reference time server `mcp-server-time` in the same venv;
#   - the reference server `@modelcontextprotocol/server-everything` from npm.
#
#   bash tests/interop/setup.sh          # prints the venv python path last
#
# Nothing but that path goes to stdout (progress and errors go to stderr).
# A second run with everything in place only checks versions (about a second: importing
# the SDK is most of it); the first installs (about 30 s with a fresh venv).
#
# Locations, below ${CAPMUX_INTEROP_DIR:-<repo>/target/interop}:
#   venv/bin/python                                  the SDK (and the time server)
#   venv/bin/mcp-server-time --local-timezone UTC    the time server (stdio)
#   node/node_modules/@modelcontextprotocol/server-everything/dist/index.js
#                                                    `node <that> stdio`: server-everything
set -euo pipefail

MCP_VERSION="2.3.0"
TIME_VERSION="2026.10.19"            # PyPI mcp-server-time (requires mcp>=2.3,<3)
EVERYTHING_VERSION="2026.8.31"       # npm @modelcontextprotocol/server-everything
EVERYTHING_PKG="@modelcontextprotocol/server-everything"

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(cd "${script_dir}/../.." && pwd)"
interop_dir="${CAPMUX_INTEROP_DIR:-${repo_dir}/target/interop}"
venv_dir="${interop_dir}/venv"
py="${venv_dir}/bin/python"
node_dir="${interop_dir}/node"
everything_dir="${node_dir}/node_modules/${EVERYTHING_PKG}"
everything_entry="${everything_dir}/dist/index.js"

mkdir -p "${interop_dir}"
# Test binaries (or CI and a developer) may run this at the same time: one at a time.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${interop_dir}/.setup.lock"
    flock 9
fi

# --- Python: the SDK and the time server -------------------------------------------
have_python_side() {
    [ -x "${py}" ] || return 1
    "${py}" - "${MCP_VERSION}" "${TIME_VERSION}" >/dev/null 2>&1 <<'PYEOF'
import sys
from importlib.metadata import version
import mcp  # noqa: F401  (must be importable, not just installed)
import mcp_server_time  # noqa: F401
sys.exit(0 if (version("mcp"), version("mcp-server-time")) == (sys.argv[1], sys.argv[2]) else 1)
PYEOF
    [ -x "${venv_dir}/bin/mcp-server-time" ]
}

if ! have_python_side; then
    if [ ! -x "${py}" ]; then
        python3 -m venv "${venv_dir}" >&2
    fi
    # One resolve for both pins, so the time server cannot move the SDK off its pin.
    "${py}" -m pip install --disable-pip-version-check -q \
        "mcp==${MCP_VERSION}" "mcp-server-time==${TIME_VERSION}" >&2
    if ! have_python_side; then
        echo "setup.sh: mcp==${MCP_VERSION} with mcp-server-time==${TIME_VERSION} is not importable in ${venv_dir} after install" >&2
        exit 1
    fi
fi

# --- Node: server-everything --------------------------------------------------------
have_everything() {
    [ -f "${everything_entry}" ] || return 1
    # The installed version, read without starting node (a JSON field, one line).
    "${py}" - "${everything_dir}/package.json" "${EVERYTHING_VERSION}" >/dev/null 2>&1 <<'PYEOF'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    sys.exit(0 if json.load(f).get("version") == sys.argv[2] else 1)
PYEOF
}

if ! have_everything; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "setup.sh: npm is needed to install ${EVERYTHING_PKG}@${EVERYTHING_VERSION}" >&2
        exit 1
    fi
    mkdir -p "${node_dir}"
    npm install --prefix "${node_dir}" --no-audit --no-fund --save-exact --loglevel=error \
        "${EVERYTHING_PKG}@${EVERYTHING_VERSION}" >&2
    if ! have_everything; then
        echo "setup.sh: ${EVERYTHING_PKG}@${EVERYTHING_VERSION} is not at ${everything_dir} after npm install" >&2
        exit 1
    fi
fi

echo "${py}"
