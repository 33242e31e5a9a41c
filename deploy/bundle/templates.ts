// The small text files every bundle carries: the command wrapper, the systemd unit and the install script.

import { AGENT_ENV, AGENT_NODE_FLAGS } from '../../runtime/release/node-flags.js';

/**
 * bin/edgetune: the release's own Node with the agent's memory settings, its models, its version.
 * EDGETUNE_EMULATOR (set by `edgetune deploy try`) runs that Node under qemu-user on another CPU.
 */
export function commandWrapper(version: string): string {
  const env = Object.entries(AGENT_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `#!/bin/sh
# edgetune ${version}: the agent's memory settings (runtime/release/node-flags.ts), this release's models.
release=$(dirname "$(dirname "$(readlink -f "$0")")")
export ${env}
export EDGETUNE_MODEL_DIR="$release/models" EDGETUNE_RELEASE='${version}'
# sharp imports JSON modules, which Node 20 before 20.17 reports as experimental on every start.
exec \${EDGETUNE_EMULATOR:-} "$release/node/bin/node" --disable-warning=ExperimentalWarning ${AGENT_NODE_FLAGS.join(' ')} "$release/edgetune.js" "$@"
`;
}

export function systemdUnit(version: string): string {
  return `# edgetune ${version}; installed by install.sh to /etc/systemd/system/edgetune.service
[Unit]
Description=edgetune agent (on-device transfer learning)
Wants=network-online.target time-sync.target
After=network-online.target time-sync.target

[Service]
User=edgetune
ExecStart=/opt/edgetune/current/bin/edgetune agent --config /etc/edgetune/agent.json
Environment=XDG_CACHE_HOME=/var/cache/edgetune
Restart=on-failure
RestartSec=5
# SIGTERM stops the agent cleanly (it drains its queue and closes the store).
TimeoutStopSec=30
NoNewPrivileges=yes
ProtectSystem=full
ReadWritePaths=/var/lib/edgetune /var/cache/edgetune /var/log/edgetune

[Install]
WantedBy=multi-user.target
`;
}

/** A root oneshot that applies an update the (unprivileged) agent downloaded; started by the path unit. */
export function updateUnits(version: string): { service: string; path: string } {
  return {
    service: `# edgetune ${version}: applies an agent update pushed from the console (docs/deploy.md)
[Unit]
Description=edgetune agent update
After=network-online.target

[Service]
Type=oneshot
ExecStart=/opt/edgetune/current/bin/edgetune release apply-update --prefix / --service systemd
`,
    path: `# edgetune ${version}: the agent writes request.json when an update is downloaded and verified
[Unit]
Description=edgetune agent update requests

[Path]
PathChanged=/var/lib/edgetune/updates/request.json

[Install]
WantedBy=multi-user.target
`,
  };
}

export function installScript(version: string, target: string): string {
  return `#!/bin/sh
# Installs edgetune ${version} (${target}) from this folder under PREFIX/opt/edgetune/releases/${version}.
#   sh install.sh [--prefix DIR] [--activate]
# --activate also points PREFIX/opt/edgetune/current at it (an atomic symlink switch); a flash or an
# agent update does that itself, with a health check and a rollback. Safe to run again.
set -eu
version='${version}'
prefix=/
activate=no
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --activate) activate=yes; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")" && pwd)
root=\${prefix%/}
opt="$root/opt/edgetune"
release="$opt/releases/$version"
(cd "$here" && sha256sum -c --quiet --strict SHA256SUMS) || { echo "install.sh: $here: files do not match SHA256SUMS" >&2; exit 1; }
mkdir -p "$opt/releases" "$root/etc/edgetune" "$root/var/lib/edgetune" "$root/var/log/edgetune" "$root/var/cache/edgetune"
chmod 0700 "$root/etc/edgetune"
if [ "$here" != "$release" ]; then
  if [ -d "$release" ]; then
    rm -rf "$here.partial" 2>/dev/null || true
  elif [ "$here" = "$release.partial" ]; then
    mv "$here" "$release"
  else
    rm -rf "$release.partial"
    cp -a "$here" "$release.partial"
    mv "$release.partial" "$release"
  fi
fi
# A real device (prefix /) with systemd: a system user and the service unit, enabled.
if [ -z "$root" ] && command -v systemctl >/dev/null 2>&1; then
  if ! id edgetune >/dev/null 2>&1; then
    groups=""
    getent group video >/dev/null 2>&1 && groups="--groups video"
    useradd --system --home-dir /var/lib/edgetune --shell /usr/sbin/nologin $groups edgetune
  fi
  chown -R edgetune: /var/lib/edgetune /var/log/edgetune /var/cache/edgetune /etc/edgetune
  mkdir -p /var/lib/edgetune/updates && chown edgetune: /var/lib/edgetune/updates
  cp "$release/edgetune.service" "$release/edgetune-update.service" "$release/edgetune-update.path" /etc/systemd/system/
  systemctl daemon-reload
  systemctl enable edgetune.service >/dev/null 2>&1
  systemctl enable --now edgetune-update.path >/dev/null 2>&1
fi
if [ "$activate" = yes ]; then
  now=$(readlink "$opt/current" 2>/dev/null || true)
  if [ "$now" != "releases/$version" ]; then
    [ -n "$now" ] && echo "\${now##*/}" > "$opt/previous"
    ln -sfn "releases/$version" "$opt/current.new"
    mv -T "$opt/current.new" "$opt/current"
  fi
fi
echo "edgetune $version installed in $release"
`;
}
