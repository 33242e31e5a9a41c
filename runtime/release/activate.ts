// Switching a device to an installed release, proving it healthy, and going back when it is not. The
// same steps run over SSH (`edgetune deploy flash`) and on the device itself (an agent update pushed over
// MQTT): both hand in an `Exec` that runs a shell script there.
//
//   current -> new release, restart the agent, poll /health until it reports the new release (and, with
//   a fleet, its MQTT link up and its state message acknowledged), then any extra check of the caller's;
//   on failure current -> previous release, restart, and the error says why.

import { DeployError, EdgetuneError, errorMessage } from '../../core/errors.js';
import { type ReleaseLayout, checkVersion, shq } from './layout.js';
import type { ServiceManager } from './service.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a POSIX shell script on the device. */
export interface Exec {
  run(script: string, options?: { timeoutMs?: number }): Promise<ExecResult>;
}

/** Runs `script` and returns stdout, or throws naming `what` with the script's stderr. */
export async function runOk(exec: Exec, script: string, what: string, options?: { timeoutMs?: number }): Promise<string> {
  const result = await exec.run(script, options);
  if (result.code !== 0)
    throw new DeployError(
      'DEPLOY_REMOTE_FAILED',
      `${what} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim().slice(-800)}`,
    );
  return result.stdout;
}

export interface HealthOptions {
  /** The agent's HTTP port on the device (it listens on 127.0.0.1 by default). */
  port: number;
  timeoutMs?: number;
  /** With a fleet: the agent must be connected to its broker with its state message acknowledged. */
  fleet?: boolean;
}

export interface ActivateOptions {
  layout: ReleaseLayout;
  version: string;
  service: ServiceManager;
  health: HealthOptions;
  /** Another check once /health passes (e.g. the console saw the device's state message). */
  verify?: () => Promise<void>;
  onPhase?: (phase: 'switch' | 'restart' | 'health' | 'rollback') => void;
  /** Called with the failure before the rollback restarts the previous release. */
  onFailed?: (err: unknown) => void;
}

export interface Activation {
  version: string;
  previous: string | null;
  /** False when the release was already current and healthy (a re-run). */
  changed: boolean;
  health: Record<string, unknown>;
}

/** The version `current` points to, or null. */
export async function currentVersion(exec: Exec, layout: ReleaseLayout): Promise<string | null> {
  const link = (await exec.run(`readlink ${shq(layout.current)}`)).stdout.trim();
  return link ? link.slice(link.lastIndexOf('/') + 1) : null;
}

/** Points `current` at a release: a new symlink renamed over the old one, never a moment without one. */
export function switchScript(layout: ReleaseLayout, version: string): string {
  const rel = `releases/${checkVersion(version)}`;
  const tmp = `${layout.current}.new`;
  return `test -d ${shq(`${layout.opt}/${rel}`)} && ln -sfn ${shq(rel)} ${shq(tmp)} && mv -T ${shq(tmp)} ${shq(layout.current)}`;
}

/** Unpacks a bundle into releases/<version> (through <version>.partial and its install.sh, which checks
 * SHA256SUMS), then removes the tarball. An installed release is left as it is. */
export function installScript(layout: ReleaseLayout, tarball: string, version: string): string {
  const release = `${layout.releases}/${checkVersion(version)}`;
  const partial = `${release}.partial`;
  return [
    `if [ ! -f ${shq(`${release}/manifest.json`)} ]; then`,
    `  rm -rf ${shq(partial)} && mkdir -p ${shq(partial)} && tar -xzf ${shq(tarball)} --strip-components=1 -C ${shq(partial)} && sh ${shq(`${partial}/install.sh`)} --prefix ${shq(layout.prefix)} || exit 1`,
    'fi',
    `rm -f ${shq(tarball)}`,
  ].join('\n');
}

/** Removes every release folder (and leftover .partial) but `keep`. */
export function pruneScript(layout: ReleaseLayout, keep: (string | null)[]): string {
  const names = keep.filter((k): k is string => Boolean(k)).map((k) => shq(checkVersion(k)));
  return `cd ${shq(layout.releases)} && for d in *; do case "$d" in ${names.join('|')}) ;; *) rm -rf -- "$d" ;; esac; done`;
}

export async function activateRelease(exec: Exec, options: ActivateOptions): Promise<Activation> {
  const { layout, version, service } = options;
  const previous = await currentVersion(exec, layout);
  if (previous === version) {
    // A re-run: nothing to switch if the agent already runs this release and is healthy.
    const probe = await probeHealth(exec, layout, service, options.health, version);
    if (probe.ok) {
      await options.verify?.();
      return { version, previous, changed: false, health: probe.health };
    }
  }
  try {
    options.onPhase?.('switch');
    const remember = previous && previous !== version ? ` && printf '%s\\n' ${shq(previous)} > ${shq(layout.previousFile)}` : '';
    await runOk(exec, switchScript(layout, version) + remember, `switching ${layout.current} to ${version}`);
    options.onPhase?.('restart');
    await runOk(exec, service.restart(layout), `restarting the agent (${service.name})`, { timeoutMs: 30_000 });
    options.onPhase?.('health');
    const health = await waitHealthy(exec, layout, service, options.health, version);
    await options.verify?.();
    // Two releases stay: this one and the one to roll back to.
    await exec.run(pruneScript(layout, [version, previous]));
    return { version, previous, changed: true, health };
  } catch (err) {
    options.onFailed?.(err);
    if (!previous || previous === version) {
      await exec.run(service.stop(layout)).catch(() => undefined);
      throw new DeployError(
        'DEPLOY_HEALTH_FAILED',
        `release ${version} failed: ${errorMessage(err)}; no earlier release to go back to, the agent is stopped`,
        { cause: err },
      );
    }
    options.onPhase?.('rollback');
    let back = `rolled back to ${previous}`;
    try {
      await runOk(exec, switchScript(layout, previous), `switching back to ${previous}`);
      await runOk(exec, service.restart(layout), 'restarting the previous release', { timeoutMs: 30_000 });
      await waitHealthy(exec, layout, service, options.health, previous);
    } catch (rollbackErr) {
      back = `rolling back to ${previous} failed too: ${errorMessage(rollbackErr)}`;
    }
    throw new DeployError('DEPLOY_HEALTH_FAILED', `release ${version} failed: ${errorMessage(err)}; ${back}`, { cause: err });
  }
}

interface Probe {
  ok: boolean;
  alive: boolean;
  reason: string;
  health: Record<string, unknown>;
}

// The release's own Node asks (curl and wget are not on every device); a release from before bundles
// carried Node has the system's. EDGETUNE_EMULATOR as in bin/edgetune.
const FETCH = (port: number, layout: ReleaseLayout) =>
  `n=${shq(`${layout.current}/node/bin/node`)}; [ -x "$n" ] || n=node; \${EDGETUNE_EMULATOR:-} "$n" -e ${shq(`fetch("http://127.0.0.1:${port}/health",{signal:AbortSignal.timeout(3000)}).then(r=>r.text()).then(t=>process.stdout.write(t),e=>process.stdout.write(JSON.stringify({error:String(e.cause?.code??e.message)})))`)}`;

/** One health probe: starting Node to ask /health takes about a second on a Pi, longer while it is busy. */
const PROBE_TIMEOUT_MS = 30_000;

async function probeHealth(
  exec: Exec,
  layout: ReleaseLayout,
  service: ServiceManager,
  options: HealthOptions,
  version: string,
): Promise<Probe> {
  let out: ExecResult;
  try {
    out = await exec.run(`if ${service.alive(layout)}; then echo alive; else echo dead; fi; ${FETCH(options.port, layout)}`, {
      timeoutMs: PROBE_TIMEOUT_MS,
    });
  } catch (err) {
    // A slow probe is a device still busy starting (a Pi Zero importing its backbone on first start,
    // an emulated one): not yet healthy, asked again until the health deadline. Every Exec rejects a
    // command over its time with DEPLOY_TIMEOUT.
    if (err instanceof EdgetuneError && err.code === 'DEPLOY_TIMEOUT') {
      return { ok: false, alive: true, reason: `the health probe took longer than ${PROBE_TIMEOUT_MS / 1000} s`, health: {} };
    }
    throw err;
  }
  const [first = '', ...rest] = out.stdout.split('\n');
  const alive = first.trim() === 'alive';
  let health: Record<string, unknown> = {};
  try {
    health = JSON.parse(rest.join('\n')) as Record<string, unknown>;
  } catch {
    return { ok: false, alive, reason: `/health answered ${JSON.stringify(rest.join('\n').slice(0, 200))}`, health };
  }
  if (typeof health.error === 'string') return { ok: false, alive, reason: `/health on port ${options.port}: ${health.error}`, health };
  if (health.status !== 'ok') return { ok: false, alive, reason: `/health status is ${JSON.stringify(health.status)}`, health };
  if (health.release !== version)
    return {
      ok: false,
      alive,
      reason: `the agent on port ${options.port} runs release ${JSON.stringify(health.release ?? null)}, not ${version}`,
      health,
    };
  if (options.fleet) {
    const fleet = health.fleet as { connected?: boolean; queued?: number } | undefined;
    if (!fleet?.connected) return { ok: false, alive, reason: 'the agent is not connected to its MQTT broker', health };
    if (fleet.queued !== 0)
      return {
        ok: false,
        alive,
        reason: `the agent's state message is not acknowledged by the broker yet (${fleet.queued} queued)`,
        health,
      };
  }
  return { ok: true, alive, reason: 'ok', health };
}

async function waitHealthy(
  exec: Exec,
  layout: ReleaseLayout,
  service: ServiceManager,
  options: HealthOptions,
  version: string,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let last: Probe | undefined;
  for (;;) {
    last = await probeHealth(exec, layout, service, options, version);
    if (last.ok) return last.health;
    if (!last.alive || Date.now() > deadline) {
      const logs = (await exec.run(service.logs(layout))).stdout.trim().split('\n').slice(-4).join(' | ');
      throw new DeployError(
        'DEPLOY_HEALTH_FAILED',
        `${last.alive ? `no healthy agent after ${Math.round((options.timeoutMs ?? 60_000) / 1000)} s` : 'the agent exited'} (${last.reason})${logs ? `; its log: ${logs.slice(-1200)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}
