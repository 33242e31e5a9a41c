// `edgetune deploy sdcard`: a Raspberry Pi OS boot partition that installs edgetune on first boot. The
// bundle, the agent's config (device id, MQTT login issued by the console now) and the fleet key go to
// <boot>/edgetune/; first boot runs edgetune/firstboot.sh as root, which installs the bundle
// (install.sh), moves the secrets off the FAT partition into /etc/edgetune (0600), starts the agent
// through `edgetune release activate` (health check included), and deletes <boot>/edgetune/. The agent's
// first state message is the device appearing in the console.
//
// Two ways in, as Raspberry Pi OS has them: cloud-init (Trixie images; `user-data` gets a runcmd entry,
// merged into one the Imager wrote) or a firstrun script on the kernel command line (Bookworm images:
// `systemd.run=` in cmdline.txt, removed again by the script).

import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseDocument } from 'yaml';
import { DeployError } from '../../core/errors.js';
import { shq } from '../../runtime/release/layout.js';
import { checkId } from '../../runtime/sync/protocol.js';
import { readBundleManifest } from '../bundle/read.js';
import type { FleetProvisioning } from '../flash/flash.js';

export interface SdcardOptions {
  /** The mounted boot partition (bootfs). */
  boot: string;
  bundle: string;
  device: string;
  mode: 'cloud-init' | 'firstrun';
  fleet?: FleetProvisioning;
  httpPort?: number;
  /** Where the boot partition is mounted on the running Pi (Bookworm and later: /boot/firmware). */
  bootMount?: string;
}

export interface SdcardResult {
  files: string[];
  mode: SdcardOptions['mode'];
  device: string;
  version: string;
  /** The host name first boot sets (the device id), and the one the card's user-data had before. */
  hostname: { set: string; replaced: string | null };
}

export function firstbootScript(options: {
  version: string;
  device: string;
  bundleFile: string;
  httpPort: number;
  fleet: boolean;
  bootMount: string;
  mode: SdcardOptions['mode'];
}): string {
  return `#!/bin/sh
# edgetune ${options.version}: first boot. Installs the bundle beside this script, moves the agent's config
# and the fleet key into /etc/edgetune (0600), starts the agent and checks it is healthy, then removes
# this folder (it holds the device's MQTT password). Log: /var/log/edgetune-firstboot.log
#   sh firstboot.sh [--prefix DIR] [--service systemd|process]   (options for testing off a Pi)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# The device's MQTT password must not stay on the FAT partition (readable by anyone with the card),
# whatever happens below: copied into /etc/edgetune on success, gone on failure too.
trap 'rm -f "$here/agent.json"' EXIT
prefix=/
service=systemd
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --service) service=$2; shift 2 ;;
    *) echo "firstboot.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
root=\${prefix%/}
mkdir -p "$root/var/log"
exec >>"$root/var/log/edgetune-firstboot.log" 2>&1
echo "edgetune first boot: $(date)"
work="$root/var/tmp/edgetune-${options.version}"
rm -rf "$work" && mkdir -p "$work"
tar -xzf "$here/${options.bundleFile}" --strip-components=1 -C "$work"
sh "$work/install.sh" --prefix "$prefix"
rm -rf "$work"
umask 077
mkdir -p "$root/etc/edgetune"
sed "s|@PREFIX@|$root|g" "$here/agent.json" > "$root/etc/edgetune/agent.json"
${options.fleet ? `cp "$here/fleet.pub" "$root/etc/edgetune/fleet.pub"\n` : ''}chmod 0600 "$root/etc/edgetune/"*
[ -z "$root" ] && id edgetune >/dev/null 2>&1 && chown -R edgetune: /etc/edgetune
# The host name is the device id (deploy sdcard --device), in both boot modes.
echo ${shq(options.device)} > "$root/etc/hostname"
if [ -f "$root/etc/hosts" ]; then sed -i "s/^127\\.0\\.1\\.1[[:space:]].*/127.0.1.1\\t${options.device}/" "$root/etc/hosts"; fi
if [ -z "$root" ]; then hostname ${shq(options.device)} || true; fi
sed -i "s|\\"service\\": \\"[a-z]*\\"|\\"service\\": \\"$service\\"|" "$root/etc/edgetune/agent.json"
"$root/opt/edgetune/releases/${options.version}/bin/edgetune" release activate --prefix "$prefix" --version ${shq(options.version)} --service "$service" --port ${options.httpPort}${options.fleet ? ' --fleet' : ''} --timeout 300
${
  options.mode === 'firstrun'
    ? `# Run once: take the systemd.run arguments off the kernel command line again.
sed -i 's| systemd.run=[^ ]*edgetune/firstboot.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target||' "$here/../cmdline.txt"
`
    : ''
}rm -rf "$here"
echo "edgetune ${options.version} is running"
`;
}

export function writeSdcard(options: SdcardOptions): SdcardResult {
  const { boot } = options;
  checkId('device', options.device);
  if (!existsSync(join(boot, 'cmdline.txt')) && !existsSync(join(boot, 'config.txt'))) {
    throw new DeployError('SDCARD_NOT_BOOT', `${boot}: no cmdline.txt or config.txt; is this the Raspberry Pi OS boot partition (bootfs)?`);
  }
  const manifest = readBundleManifest(options.bundle);
  if (manifest.target !== 'linux-arm64') {
    // Still written: an x64 board with a Pi-style boot partition is unusual but not wrong.
    process.emitWarning(`${options.bundle} is a ${manifest.target} bundle; Raspberry Pi OS 64-bit needs linux-arm64`);
  }
  const bootMount = options.bootMount ?? '/boot/firmware';
  const httpPort = options.httpPort ?? 8080;
  const dir = join(boot, 'edgetune');
  mkdirSync(dir, { recursive: true });
  const bundleFile = basename(options.bundle);
  copyFileSync(options.bundle, join(dir, bundleFile));
  writeFileSync(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  const config: Record<string, unknown> = {
    device: { id: options.device },
    data: { dir: '@PREFIX@/var/lib/edgetune' },
    http: { port: httpPort },
    release: { prefix: '@PREFIX@/', service: 'systemd' },
  };
  if (options.fleet) {
    config.fleet = {
      url: options.fleet.brokerUrl,
      id: options.fleet.fleet,
      username: options.device,
      password: options.fleet.issueCredentials(options.device),
      publicKeyFile: '@PREFIX@/etc/edgetune/fleet.pub',
      protocolVersion: options.fleet.protocolVersion ?? 4,
    };
    writeFileSync(join(dir, 'fleet.pub'), options.fleet.publicKeyPem);
  }
  // FAT has no permissions: the password sits on the card until first boot moves it into /etc/edgetune.
  writeFileSync(join(dir, 'agent.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(
    join(dir, 'firstboot.sh'),
    firstbootScript({
      version: manifest.version,
      device: options.device,
      bundleFile,
      httpPort,
      fleet: Boolean(options.fleet),
      bootMount,
      mode: options.mode,
    }),
  );
  const files = [bundleFile, 'manifest.json', 'agent.json', ...(options.fleet ? ['fleet.pub'] : []), 'firstboot.sh'].map((f) =>
    join(dir, f),
  );
  const script = `${bootMount}/edgetune/firstboot.sh`;
  let replaced: string | null = null;
  if (options.mode === 'cloud-init') {
    const written = addCloudInit(boot, options.device, script);
    files.push(written.path);
    replaced = written.replacedHostname;
  } else files.push(addFirstrun(boot, script));
  return { files, mode: options.mode, device: options.device, version: manifest.version, hostname: { set: options.device, replaced } };
}

/** user-data: our runcmd entry and the host name (the device id), merged into what is there (the Imager writes one). */
function addCloudInit(boot: string, device: string, script: string): { path: string; replacedHostname: string | null } {
  const path = join(boot, 'user-data');
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '#cloud-config\n';
  const doc = parseDocument(text);
  if (doc.errors.length) throw new DeployError('SDCARD_BAD_USER_DATA', `${path}: not YAML: ${doc.errors[0]!.message}`);
  const before = doc.get('hostname');
  const replacedHostname = typeof before === 'string' && before !== device ? before : null;
  doc.set('hostname', device);
  const entry = ['sh', script];
  const runcmd = doc.get('runcmd');
  const existing =
    runcmd && typeof runcmd === 'object' && 'toJSON' in runcmd ? ((runcmd as { toJSON(): unknown }).toJSON() as unknown[]) : [];
  if (!existing.some((c) => JSON.stringify(c) === JSON.stringify(entry))) doc.set('runcmd', [...existing, entry]);
  const out = doc.toString();
  writeFileSync(path, out.startsWith('#cloud-config') ? out : `#cloud-config\n${out}`);
  return { path, replacedHostname };
}

/** cmdline.txt: systemd runs the script once at boot and reboots (what the Imager's firstrun.sh does). */
function addFirstrun(boot: string, script: string): string {
  const path = join(boot, 'cmdline.txt');
  if (!existsSync(path)) throw new DeployError('SDCARD_NOT_BOOT', `${path}: missing; firstrun mode needs the kernel command line`);
  const line = readFileSync(path, 'utf8').trim();
  const args = `systemd.run=${script} systemd.run_success_action=reboot systemd.unit=kernel-command-line.target`;
  if (line.includes(args)) return path;
  if (/systemd\.run=/.test(line)) {
    throw new DeployError(
      'SDCARD_FIRSTRUN_TAKEN',
      `${path}: another first-run script is set (${/systemd\.run=\S+/.exec(line)![0]}); boot the card once first, or use --mode cloud-init`,
    );
  }
  writeFileSync(path, `${line} ${args}\n`);
  return path;
}
