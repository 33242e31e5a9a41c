#!/usr/bin/env bash
# Installs everything edgetune's tests need on Debian 12, run as root: the system packages listed in
# system-packages.txt that are missing, then the npm dependencies (npm ci). Safe to run again: it only
# installs what is missing, and prints nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")"

fail() {
  echo "setup.sh: $*" >&2
  exit 1
}

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
((node_major >= 20)) || fail "Node.js 20 or newer is needed (Debian 12's nodejs is 18): install it from https://nodejs.org, then run ./setup.sh again"

# A probe is an absolute path that must exist, or a command on PATH; the third column may point elsewhere.
present() {
  local probe=$1 override=${2:-}
  [[ -n $override && -n ${!override:-} ]] && probe=${!override}
  if [[ $probe == /* ]]; then [[ -e $probe ]]; else command -v "$probe" >/dev/null; fi
}

missing=()
while read -r package probe override _; do
  [[ -z ${package:-} || $package == \#* ]] && continue
  present "$probe" "${override:-}" || missing+=("$package")
done <system-packages.txt

if ((${#missing[@]})); then
  ((EUID == 0)) || fail "missing ${missing[*]}: run ./setup.sh as root (sudo ./setup.sh) to install them"
  echo "setup.sh: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm ci again only when package-lock.json changed since the last install; a node_modules that is a link
# (a git worktree sharing another checkout's) belongs to that checkout and is left alone.
if [[ ! -L node_modules && (! -e node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json) ]]; then
  echo "setup.sh: npm ci"
  # onnxruntime-node's install script would download CUDA binaries; package.json's allowScripts denies it from
  # npm 11.16 on, and the variable its script reads skips it on older npm too.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
