// `edgetune deploy flash`: one bundle onto many devices over SSH, a few at a time. Per device:
// connect (host key checked) -> preflight -> upload (resumable) -> unpack + install.sh -> identity, MQTT
// login and fleet key (0600) -> activate (symlink switch, restart, /health + first MQTT state message,
// rollback on failure). A failure stops that device only; every device ends as one row of the summary.
// Re-running is safe: an installed release is not uploaded again, and a healthy current one is left be.

import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DeployError, EdgetuneError, errorMessage } from '../../core/errors.js';
import { activateRelease, installScript, runOk } from '../../runtime/release/activate.js';
import { releaseLayout, shq } from '../../runtime/release/layout.js';
import { serviceManager } from '../../runtime/release/service.js';
import type { BundleManifest } from '../bundle/build.js';
import { readBundleManifest } from '../bundle/read.js';
import type { HostEntry, InventoryError } from './inventory.js';
import { checkFacts, needsSudo, readFacts } from './preflight.js';
import { type HostKeyPolicy, SshSession, fileSha256 } from './ssh.js';
import { type BrokerLogin, StateWatch } from './state-watch.js';

/** How devices join the fleet: the console issues each one its broker login. */
export interface FleetProvisioning {
  fleet: string;
  /** The broker as devices reach it. */
  brokerUrl: string;
  protocolVersion?: 4 | 5;
  publicKeyPem: string;
  /** Issues (or re-issues) a device's broker password; the console keeps only a hash. */
  issueCredentials(device: string): string;
  /** The console's own login, to see each device's first state message. */
  watch?: BrokerLogin;
}

export interface FlashOptions {
  bundle: string;
  hosts: HostEntry[];
  /** Lines of an inventory that did not parse: reported as failed devices. */
  invalid?: InventoryError[];
  hostKeys: HostKeyPolicy;
  /** Private key for every host without its own identity= (default ~/.ssh/id_ed25519, id_rsa). */
  privateKey?: Buffer;
  fleet?: FleetProvisioning;
  /** Devices flashed at once (default 4). */
  concurrency?: number;
  /** Defaults for hosts that do not say. */
  root?: string;
  httpPort?: number;
  service?: 'systemd' | 'process';
  minFreeBytes?: number;
  /** Run as root through sudo (default auto: when the login is not root and cannot write the prefix). */
  sudo?: 'auto' | 'yes' | 'no';
  healthTimeoutMs?: number;
  /** A new MQTT password even when the device has one. */
  rotateCredentials?: boolean;
  signal?: AbortSignal;
  onProgress?: (event: FlashProgress) => void;
}

export type FlashPhase =
  'connect' | 'preflight' | 'upload' | 'install' | 'configure' | 'switch' | 'restart' | 'health' | 'rollback' | 'done' | 'failed';

export interface FlashProgress {
  host: string;
  device: string;
  phase: FlashPhase;
  sent?: number;
  total?: number;
  detail?: string;
}

export interface HostResult {
  host: string;
  device: string;
  ok: boolean;
  /** installed: new release running; unchanged: it was already; failed: see error (and rolledBack). */
  status: 'installed' | 'unchanged' | 'failed';
  version: string;
  previous: string | null;
  rolledBack: boolean;
  phase: FlashPhase;
  uploadedBytes: number;
  resumedFrom: number;
  seconds: number;
  code?: string;
  error?: string;
  facts?: Record<string, unknown>;
}

function defaultPrivateKey(): Buffer | undefined {
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    try {
      return readFileSync(join(homedir(), '.ssh', name));
    } catch {
      // try the next
    }
  }
  return undefined;
}

export async function flash(options: FlashOptions): Promise<HostResult[]> {
  const manifest = readBundleManifest(options.bundle);
  const sha256 = fileSha256(options.bundle);
  const bundleBytes = statSync(options.bundle).size;
  const privateKey = options.privateKey ?? defaultPrivateKey();
  const results: HostResult[] = (options.invalid ?? []).map((bad) => ({
    host: bad.name,
    device: '',
    ok: false,
    status: 'failed' as const,
    version: manifest.version,
    previous: null,
    rolledBack: false,
    phase: 'connect' as const,
    uploadedBytes: 0,
    resumedFrom: 0,
    seconds: 0,
    code: bad.error.code,
    error: bad.error.message,
  }));
  // In the inventory's order, whatever order they finish in.
  const done: HostResult[] = new Array<HostResult>(options.hosts.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < options.hosts.length; i = next++)
      done[i] = await flashHost(options.hosts[i]!, { ...options, privateKey }, manifest, sha256, bundleBytes);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 4, options.hosts.length)) }, worker));
  return [...results, ...done];
}

async function flashHost(
  host: HostEntry,
  options: FlashOptions,
  manifest: BundleManifest,
  sha256: string,
  bundleBytes: number,
): Promise<HostResult> {
  const started = Date.now();
  const version = manifest.version;
  const result: HostResult = {
    host: host.name,
    device: host.id,
    ok: false,
    status: 'failed',
    version,
    previous: null,
    rolledBack: false,
    phase: 'connect',
    uploadedBytes: 0,
    resumedFrom: 0,
    seconds: 0,
  };
  const phase = (p: FlashPhase, extra: Partial<FlashProgress> = {}) => {
    result.phase = p === 'done' || p === 'failed' ? result.phase : p;
    options.onProgress?.({ host: host.name, device: host.id, phase: p, ...extra });
  };
  const layout = releaseLayout(host.root ?? options.root ?? '/');
  const service = host.service ?? options.service ?? 'systemd';
  const httpPort = host.httpPort ?? options.httpPort ?? 8080;
  let session: SshSession | undefined;
  let watch: StateWatch | undefined;
  try {
    phase('connect');
    // A host given a password= logs in with it alone: a stock image before its key is installed.
    const privateKey = host.identityFile ? readFileSync(host.identityFile) : host.password !== undefined ? undefined : options.privateKey;
    session = await SshSession.connect(
      { host: host.host, port: host.port, username: host.username, password: host.password, privateKey },
      options.hostKeys,
    );

    phase('preflight');
    const facts = await readFacts(session, layout, version);
    result.facts = { ...facts };
    result.previous = facts.current;
    const sudo = host.sudo ?? options.sudo ?? 'auto';
    checkFacts(facts, {
      manifest,
      bundleBytes,
      layout,
      service,
      sudo,
      minFreeBytes: host.minFreeBytes ?? options.minFreeBytes ?? 100 * 2 ** 20,
    });
    if (needsSudo(facts, sudo)) {
      const staging = `/var/tmp/edgetune-upload-${host.username}`;
      const made = await session.run(`mkdir -p ${shq(staging)} && chmod 0700 ${shq(staging)}`, { asLogin: true });
      if (made.code !== 0) throw new DeployError('DEPLOY_REMOTE_FAILED', `creating ${staging}: ${made.stderr.trim()}`);
      session.elevated = { staging };
    }

    if (!facts.installed) {
      phase('upload', { sent: 0, total: bundleBytes });
      await runOk(session, `mkdir -p ${shq(layout.incoming)} ${shq(layout.releases)}`, 'creating the release folders');
      // As root through sudo the upload goes to the login's own folder; install reads it from there.
      const remote = `${session.elevated?.staging ?? layout.incoming}/${sha256}.tar.gz`;
      const upload = await session.upload(options.bundle, remote, sha256, {
        onProgress: (sent, total) => phase('upload', { sent, total }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      result.resumedFrom = upload.resumedFrom;
      result.uploadedBytes = upload.skipped ? 0 : bundleBytes - upload.resumedFrom;

      phase('install');
      await runOk(session, installScript(layout, remote, version), `installing release ${version}`, { timeoutMs: 300_000 });
    }

    phase('configure');
    await configureDevice(session, layout, host, httpPort, service, options);
    if (options.fleet?.watch) watch = await StateWatch.open(options.fleet.watch, options.fleet.fleet, host.id);

    const healthTimeoutMs = options.healthTimeoutMs ?? 90_000;
    const activation = await activateRelease(session, {
      layout,
      version,
      service: serviceManager(service),
      health: { port: httpPort, fleet: Boolean(options.fleet), timeoutMs: healthTimeoutMs },
      ...(watch ? { verify: async () => void (await watch!.waitFor(version, healthTimeoutMs)) } : {}),
      onPhase: (p) => {
        if (p === 'rollback') result.rolledBack = true;
        phase(p);
      },
    });
    result.ok = true;
    result.status = activation.changed ? 'installed' : 'unchanged';
    phase('done');
  } catch (err) {
    result.code = err instanceof EdgetuneError ? err.code : 'DEPLOY_FAILED';
    result.error = errorMessage(err);
    phase('failed', { detail: result.error });
  } finally {
    watch?.close();
    session?.close();
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
  }
  return result;
}

/** The agent's config with the device's identity and MQTT login, and the fleet key: mode 0600. */
async function configureDevice(
  session: SshSession,
  layout: ReturnType<typeof releaseLayout>,
  host: HostEntry,
  httpPort: number,
  service: 'systemd' | 'process',
  options: FlashOptions,
): Promise<void> {
  const existing = await session.run(`cat ${shq(layout.config)} 2>/dev/null`);
  let previous: { fleet?: { url?: string; id?: string; username?: string; password?: string } } = {};
  try {
    previous = existing.stdout ? (JSON.parse(existing.stdout) as typeof previous) : {};
  } catch {
    previous = {};
  }
  const config: Record<string, unknown> = {
    device: { id: host.id },
    data: { dir: layout.data },
    http: { port: httpPort },
    // Where the release is, so agent updates pushed from the console can install the next one.
    release: { prefix: layout.prefix, service },
  };
  const fleet = options.fleet;
  if (fleet) {
    const same =
      previous.fleet?.id === fleet.fleet &&
      previous.fleet.username === host.id &&
      previous.fleet.url === fleet.brokerUrl &&
      previous.fleet.password;
    // A re-run keeps the login the device has; a new password only for a new device or when asked.
    const password = same && !options.rotateCredentials ? previous.fleet!.password! : fleet.issueCredentials(host.id);
    config.fleet = {
      url: fleet.brokerUrl,
      id: fleet.fleet,
      username: host.id,
      password,
      publicKeyFile: layout.publicKey,
      protocolVersion: fleet.protocolVersion ?? 4,
    };
    await session.writeFile(layout.publicKey, fleet.publicKeyPem, 0o600);
  }
  await runOk(session, `mkdir -p ${shq(layout.etc)} && chmod 0700 ${shq(layout.etc)}`, 'creating the config folder');
  await session.writeFile(layout.config, `${JSON.stringify(config, null, 2)}\n`, 0o600);
  // On a real device the agent runs as its own user: it must be able to read what was just written.
  await session.run(
    `if [ ${shq(layout.prefix)} = / ] && id edgetune >/dev/null 2>&1; then chown edgetune: ${shq(layout.config)} ${shq(layout.publicKey)} 2>/dev/null; fi; true`,
  );
}
