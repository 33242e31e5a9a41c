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

# Node.js 20 or newer. Debian 12's nodejs is 18, so where node is missing or older this installs the Node
# the device bundles pin (deploy/bundle/node-runtime.ts; test/unit/system-check.test.ts keeps the two
# equal) into /usr/local: the official build, which is the npm package node-linux-<cpu>, checked against
# its pinned integrity, and npm beside it. Debian's nodejs
# and npm only fetch them, and are removed again when this script installed them.
node_version=20.20.2
npm_version=11.19.1
declare -A node_integrity=(
  [x64]=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
  [arm64]=sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==
)

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

install_node() {
  local cpu
  case $(uname -m) in
    x86_64) cpu=x64 ;;
    aarch64) cpu=arm64 ;;
    *) fail "Node.js 20 or newer is needed, and this script installs it only on x86_64 and aarch64 (this is $(uname -m)): install it, then run ./setup.sh again" ;;
  esac
  ((EUID == 0)) || fail "Node.js 20 or newer is needed (this is $(node --version 2>/dev/null || echo 'no node')): run ./setup.sh as root (sudo ./setup.sh) to install Node.js $node_version"
  echo "setup.sh: install Node.js $node_version and npm $npm_version in /usr/local"
  export DEBIAN_FRONTEND=noninteractive
  local fetchers=()
  command -v node >/dev/null || fetchers+=(nodejs)
  command -v npm >/dev/null || fetchers+=(npm)
  if ((${#fetchers[@]})); then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${fetchers[@]}" >/dev/null
  fi
  local work tarball got
  work=$(mktemp -d)
  tarball=$work/$(cd "$work" && npm pack --silent "node-linux-$cpu@$node_version" | tail -n 1)
  got=sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tarball")
  [[ $got == "${node_integrity[$cpu]}" ]] || fail "node-linux-$cpu@$node_version from the registry is $got, setup.sh pins ${node_integrity[$cpu]}: refusing it"
  # As the official tarball installs: /usr/local/bin/node, include/node (its headers), share/.
  tar -xzf "$tarball" -C /usr/local --strip-components=1 package/bin/node package/include package/share
  rm -rf "$work"
  hash -r
  # The old npm, run by the new node (npm 11 refuses an install by Node 18), puts npm $npm_version in
  # /usr/local: lib/node_modules/npm, bin/npm and bin/npx.
  node "$(command -v npm)" install --global --prefix=/usr/local --no-audit --no-fund --loglevel=error "npm@$npm_version" >/dev/null
  # Debian's npm leaves its own built-in config in the npm it installs (globalconfig=/etc/npmrc and a
  # globalignorefile that npm 11 warns about on every run): without it, npm is as its own tarball installs.
  rm -f /usr/local/lib/node_modules/npm/npmrc
  if ((${#fetchers[@]})); then
    apt-get purge -y -qq "${fetchers[@]}" >/dev/null
    apt-get autoremove --purge -y -qq >/dev/null
  fi
  hash -r
  [[ $(node --version) == "v$node_version" && $(npm --version) == "$npm_version" ]] ||
    fail "installed Node.js $node_version and npm $npm_version in /usr/local, but PATH finds node $(node --version) and npm $(npm --version): put /usr/local/bin first on PATH"
}

(($(node_major) >= 20)) || install_node

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
  # Where better-sqlite3's prebuilt binary cannot be downloaded, node-gyp compiles it against the headers
  # beside node (/usr/local/include/node for the Node installed above), which it cannot download either.
  node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  [[ -n ${npm_config_nodedir:-} || ! -e $node_prefix/include/node/common.gypi ]] || export npm_config_nodedir=$node_prefix
  # onnxruntime-node's install script would download CUDA binaries; package.json's allowScripts denies it from
  # npm 11.16 on, and the variable its script reads skips it on older npm too.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error >/dev/null
fi
