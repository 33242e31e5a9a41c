import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuiltBundle, type BundlePayload, bundlePayload, writeBundle } from '../../deploy/bundle/build.js';
import { FleetConsole } from '../../console/service.js';
import { startConsoleWeb } from '../../console/web.js';
import { type DeviceState, type RolloutReport, publishAgentUpdate } from '../../console/agent-update-rollout.js';
import { type Exec, activateRelease, installScript, runOk } from '../../runtime/release/activate.js';
import { releaseLayout } from '../../runtime/release/layout.js';
import { localExec } from '../../runtime/release/local.js';
import { processManager } from '../../runtime/release/service.js';
import { resultFile } from '../../agent/updater.js';
import { encodeAgentUpdate } from '../../runtime/sync/agent-update.js';
import { topics } from '../../runtime/sync/protocol.js';
import { loadOrCreateFleetKey, publicKeyPem } from '../../runtime/sync/signing.js';
import { connectMqtt, freeLoopbackPort } from '../support/mqtt.js';
import { runCli } from '../support/cli.js';
import { emulatedDevice } from '../support/emulated-device.js';
import { startFleetAgent } from '../support/fleet.js';
import type { MqttClient } from 'mqtt';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { story } from '../support/story.js';
import { until } from '../support/until.js';

// Agent updates pushed from the console over MQTT to agents really running from installed releases
// (bundles built here, the process service manager, the console with its embedded broker): signed
// manifest, chunked bundle, install, restart, health check, rollback.
process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
const tmp = tempDir('edgetune-update-');
// The console makes its fleet key on first start; made here first, it uses this one.
const fleetKey = loadOrCreateFleetKey(join(tmp.path, 'console', 'fleet.key'));
const attackerKey = loadOrCreateFleetKey(join(tmp.path, 'attacker.key'));
const devices: { id: string; root: string; port: number }[] = [];
let fleet: FleetConsole;
let payload: BundlePayload;
const bundles: Record<string, BuiltBundle> = {};

const publish = (topic: string, bytes: Buffer, options: { qos: 1; retain: boolean }) =>
  fleet.publish(topic, bytes, { retain: options.retain });
/** A device's last state as the console's registry keeps it. */
const stateOf = (device: string) => fleet.registry.device(device)?.state as DeviceState | undefined;

async function health(port: number): Promise<Record<string, unknown>> {
  return (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as Record<string, unknown>;
}

/** A device with release 0.1.0 installed and its agent running from it, as a flash leaves it. */
async function installDevice(
  id: string,
  {
    bundle = bundles['0.1.0']!,
    exec = localExec,
    healthTimeoutMs = 60_000,
  }: { bundle?: BuiltBundle; exec?: Exec; healthTimeoutMs?: number } = {},
): Promise<{ id: string; root: string; port: number }> {
  const root = join(tmp.path, 'devices', id);
  const layout = releaseLayout(root);
  const port = await freeLoopbackPort();
  await runOk(exec, `mkdir -p ${layout.releases} ${layout.etc} && cp ${bundle.file} ${layout.opt}/b.tar.gz`, 'copy');
  await runOk(exec, installScript(layout, `${layout.opt}/b.tar.gz`, '0.1.0'), 'install');
  writeFileSync(layout.publicKey, publicKeyPem(fleetKey.publicKey), { mode: 0o600 });
  const config = {
    device: { id },
    data: { dir: layout.data },
    http: { port },
    fleet: { url: fleet.brokerUrl, id: 'farm', username: id, password: fleet.addDevice(id).password, publicKeyFile: layout.publicKey },
    release: { prefix: root, service: 'process' },
  };
  writeFileSync(layout.config, JSON.stringify(config), { mode: 0o600 });
  await activateRelease(exec, {
    layout,
    version: '0.1.0',
    service: processManager,
    health: { port, fleet: true, timeoutMs: healthTimeoutMs },
  });
  const device = { id, root, port };
  devices.push(device);
  return device;
}

function pid(root: string): string {
  return readFileSync(join(root, 'opt/edgetune/run/agent.pid'), 'utf8').trim();
}

/** The processes still applying an update on a device (`release apply-update --prefix <root>`, started
 * outside the agent's tree): one goes on writing its result after the new agent reports healthy. */
function updatesApplying(root: string): string[] {
  return readdirSync('/proc').filter((entry) => {
    if (!/^\d+$/.test(entry)) return false;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      return args.includes('apply-update') && args.includes(root);
    } catch {
      return false; // it ended meanwhile
    }
  });
}

beforeAll(async () => {
  fleet = await FleetConsole.start({
    dir: join(tmp.path, 'console'),
    fleet: 'farm',
    broker: { port: 0 },
    canaries: ['pi-canary'],
    minCanaryHoldout: 0,
  });
  payload = await bundlePayload({ target: 'linux-x64' });
  for (const version of ['0.1.0', '0.2.0', '0.2.1']) bundles[version] = writeBundle({ ...payload, version }, join(tmp.path, 'bundles'));
  const broken = new Map(payload.files);
  broken.set('edgetune.js', { data: Buffer.from("console.error('release 0.3.0: cannot start'); process.exit(3);\n") });
  bundles['0.3.0'] = writeBundle({ ...payload, version: '0.3.0', files: broken }, join(tmp.path, 'bundles'));
  await Promise.all([installDevice('pi-canary'), installDevice('pi-rest')]);
}, 120_000);

afterAll(async () => {
  for (const d of devices) await until(`${d.id}'s update applied`, () => updatesApplying(d.root).length === 0, 120_000);
  for (const d of devices) await localExec.run(processManager.stop(releaseLayout(d.root)));
  await fleet?.stop();
  tmp.remove();
}, 60_000);

describe('agent updates pushed over MQTT', () => {
  // Each test continues the story of the one before (story(): alone, it runs those first).
  const step = story();
  step(
    'refuses an update not signed by the fleet key, and keeps running its release',
    async () => {
      const [canary] = devices;
      const before = pid(canary!.root);
      const forged = encodeAgentUpdate(
        {
          kind: 'agent-update',
          fleet: 'farm',
          version: '0.2.0',
          target: 'linux-x64',
          sha256: bundles['0.2.0']!.sha256,
          bytes: bundles['0.2.0']!.bytes,
          chunks: 1,
          devices: null,
          sequence: Date.now(),
          createdAt: new Date().toISOString(),
        },
        attackerKey.privateKey,
      );
      await publish(topics.fleetAgent('farm'), Buffer.from(forged), { qos: 1, retain: true });
      const refused = await until('the refusal in the state', () => {
        const update = stateOf('pi-canary')?.update;
        return update?.status === 'refused' && update;
      });
      expect(refused.error).toMatch(/signature does not verify against the fleet key/);
      expect(await health(canary!.port)).toMatchObject({ release: '0.1.0', update: { status: 'refused', code: 'SYNC_BAD_SIGNATURE' } });
      expect(pid(canary!.root)).toBe(before);
      await publish(topics.fleetAgent('farm'), Buffer.alloc(0), { qos: 1, retain: true });
    },
    30_000,
  );

  step(
    'a staged update: signature checked, installed, restarted on the canary first, then the rest of the fleet',
    async () => {
      const [canary, rest] = devices;
      const seen: Record<string, string[]> = { canary: [], rest: [] };
      const watch = setInterval(() => {
        seen.canary!.push(String(stateOf('pi-canary')?.release));
        seen.rest!.push(String(stateOf('pi-rest')?.release));
      }, 100);
      const started = Date.now();
      // From the console's web API (what `edgetune console push-update` calls): its canaries first, then everyone.
      const web = await startConsoleWeb(fleet, { port: 0, tokenFile: join(tmp.path, 'console', 'web-token') });
      const post = (body: unknown) =>
        fetch(`${web.origin}/api/agent-update`, {
          method: 'POST',
          headers: { authorization: `Bearer ${web.token}` },
          body: JSON.stringify(body),
        });
      let report: RolloutReport;
      try {
        const missing = await post({ bundle: join(tmp.path, 'no-such-bundle.tar.gz') });
        expect(missing.status).toBe(400);
        expect(((await missing.json()) as { error: string }).error).toMatch(/no-such-bundle\.tar\.gz: not an edgetune bundle/);
        expect((await post({ bundle: 'relative.tar.gz' })).status).toBe(400);
        const response = await post({ bundle: bundles['0.2.0']!.file });
        expect(response.status).toBe(200);
        report = (await response.json()) as RolloutReport;
      } finally {
        await web.close();
      }
      clearInterval(watch);
      console.log(
        `agent update of ${(bundles['0.2.0']!.bytes / 2 ** 20).toFixed(1)} MB to 2 devices in 2 stages: ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      expect(report).toMatchObject({ ok: true, stage: 'fleet' });
      expect(report.devices.map((d) => [d.device, d.release])).toEqual([
        ['pi-canary', '0.2.0'],
        ['pi-rest', '0.2.0'],
      ]);
      // While the canary was on 0.2.0, the rest of the fleet still ran 0.1.0.
      const firstCanary = seen.canary!.indexOf('0.2.0');
      expect(firstCanary).toBeGreaterThanOrEqual(0);
      expect(seen.rest![firstCanary]).toBe('0.1.0');
      for (const d of [canary!, rest!]) {
        expect(await health(d.port)).toMatchObject({ status: 'ok', release: '0.2.0', fleet: { connected: true } });
        expect(readFileSync(`/proc/${pid(d.root)}/cmdline`, 'utf8')).toContain(`${d.root}/opt/edgetune/releases/0.2.0/edgetune.js`);
        expect(readFileSync(join(d.root, 'opt/edgetune/previous'), 'utf8').trim()).toBe('0.1.0');
      }
    },
    150_000,
  );

  step(
    'refuses an older manifest signed by the fleet key: a replayed downgrade',
    async () => {
      const [canary] = devices;
      const old = encodeAgentUpdate(
        {
          kind: 'agent-update',
          fleet: 'farm',
          version: '0.1.0',
          target: 'linux-x64',
          sha256: bundles['0.1.0']!.sha256,
          bytes: bundles['0.1.0']!.bytes,
          chunks: 1,
          devices: null,
          sequence: 1,
          createdAt: new Date().toISOString(),
        },
        fleetKey.privateKey,
      );
      await publish(topics.fleetAgent('farm'), Buffer.from(old), { qos: 1, retain: true });
      const refused = await until('the refusal in the state', () => {
        const update = stateOf('pi-canary')?.update;
        return update?.status === 'refused' && update;
      });
      expect(refused.error).toMatch(/sequence 1 is older than \d+: a replayed \(downgrade\) update, refused/);
      expect(await health(canary!.port)).toMatchObject({ release: '0.2.0', update: { code: 'SYNC_REPLAY' } });
    },
    30_000,
  );

  step(
    'an update whose new agent fails its health check is rolled back, reported, and not tried again',
    async () => {
      const [canary] = devices;
      const update = await publishAgentUpdate({
        fleet: 'farm',
        bundle: bundles['0.3.0']!.file,
        key: fleetKey.privateKey,
        publish,
        devices: ['pi-canary'],
      });
      const state = await until(
        'the rollback reported by the restored agent',
        () => {
          const s = stateOf('pi-canary');
          return s?.update?.version === '0.3.0' && s.update.status === 'rolled-back' && s;
        },
        90_000,
      );
      expect(state.release).toBe('0.2.0');
      expect(String(state.update!.error)).toMatch(/^the agent exited .*release 0\.3\.0: cannot start$/);
      expect(await health(canary!.port)).toMatchObject({ status: 'ok', release: '0.2.0' });
      expect(readFileSync(join(canary!.root, 'opt/edgetune/current/manifest.json'), 'utf8')).toContain('"version": "0.2.0"');
      // The retained manifest is still there; the device does not loop on it.
      const restored = pid(canary!.root);
      await new Promise((r) => setTimeout(r, 3000));
      expect(pid(canary!.root)).toBe(restored);
      expect(update.version).toBe('0.3.0');
    },
    120_000,
  );
  step(
    'to a mixed fleet: who cannot take it is named first, progress per stage and device, a summary at the end; a second request is answered at once',
    async () => {
      // Beside the two installed devices: an agent run from a checkout (no release section), a device of
      // another CPU (its state as an arm64 Pi sends it), and a login that never connected.
      const checkout = await startFleetAgent(fleet, 'pi-checkout', join(tmp.path, 'pi-checkout'));
      const clients: MqttClient[] = [];
      const arm = await connectMqtt(fleet.brokerUrl, 'pi-arm', fleet.addDevice('pi-arm').password, 4, clients);
      const armState = {
        protocol: 1,
        device: 'pi-arm',
        online: true,
        release: '0.1.0',
        updatable: true,
        vitals: { target: 'linux-arm64' },
      };
      await arm.publishAsync(topics.device('farm', 'pi-arm', 'state'), Buffer.from(JSON.stringify(armState)), { qos: 1, retain: true });
      fleet.addDevice('pi-never');
      const web = await startConsoleWeb(fleet, { port: 0, tokenFile: join(tmp.path, 'console', 'web-token') });
      writeFileSync(join(tmp.path, 'console', 'web.json'), JSON.stringify({ origin: web.origin }));
      writeFileSync(join(tmp.path, 'console', 'console.json'), JSON.stringify({ fleet: 'farm' }));
      try {
        await until('all four online', () => fleet.devices().filter((d) => d.online).length === 4);
        const cli = runCli([
          'console',
          'push-update',
          bundles['0.2.1']!.file,
          '--dir',
          join(tmp.path, 'console'),
          '--stage-timeout',
          '120',
        ]);
        await until('the rollout running', () => fleet.progress.current);
        const second = await fetch(`${web.origin}/api/agent-update`, {
          method: 'POST',
          headers: { authorization: `Bearer ${web.token}` },
          body: JSON.stringify({ bundle: bundles['0.2.1']!.file }),
        });
        expect(second.status).toBe(409);
        expect(((await second.json()) as { error: string; code: string }).error).toMatch(
          /^agent update 0\.2\.1 is rolling out \(canaries stage, 0 of 1 done\) since /,
        );
        const result = await cli;
        expect(result.stderr).toContain('cannot take 0.2.1: pi-arm: a linux-arm64 device; the bundle is linux-x64');
        expect(result.stderr).toContain('cannot take 0.2.1: pi-checkout: no release section');
        expect(result.stderr).toMatch(/canaries: pi-canary downloading/);
        expect(result.stderr).toMatch(/canaries: pi-canary updated/);
        expect(result.stderr).toMatch(/fleet: pi-rest updated/);
        expect(result.stdout).toMatch(/^canaries: 1 of 1 done in \d+\.\d s$/m);
        expect(result.stdout).toMatch(/^fleet: 2 of 2 done in \d+\.\d s$/m);
        expect(result.stdout).toMatch(/^agent 0\.2\.1: every device updated \(2 of 2 on it, 2 cannot take it\)$/m);
        expect(result.stdout).toMatch(/pi-arm\s+-\s+cannot take it\s+a linux-arm64 device/);
        expect(result.stdout).not.toContain('pi-never');
        expect(result.code).toBe(0);
        expect(fleet.devices().find((d) => d.id === 'pi-rest')).toMatchObject({
          release: '0.2.1',
          update: { version: '0.2.1', status: 'installed' },
        });
      } finally {
        for (const c of clients) c.end(true);
        await web.close();
        await checkout.stop();
      }
    },
    180_000,
  );
});

describe("an agent update to a 32-bit Raspberry Pi (the armv7 bundle's own Node under qemu-arm)", () => {
  it('the console sends the linux-armv7 release only to the armv7 device, which installs it and comes back on it', async () => {
    // The device presents a Pi Zero 2 W with a 32-bit OS; every start of its Node goes through qemu-arm.
    const zero = emulatedDevice('linux-armv7', 'rpi-zero-2w', join(tmp.path, 'rpi-zero-2w'));
    const payload = await bundlePayload({ target: 'linux-armv7' });
    const armv7 = (version: string) => writeBundle({ ...payload, version }, join(tmp.path, 'bundles-armv7'));
    const [first, update] = [armv7('0.1.0'), armv7('0.2.0')];
    const pi = await installDevice('pi-armv7', { bundle: first, exec: zero.exec, healthTimeoutMs: 300_000 });
    // The armv7 agent says which bundle it takes: the one its CPU runs.
    await until('the armv7 device online', () => fleet.devices().find((d) => d.id === 'pi-armv7')?.online);
    expect(stateOf('pi-armv7')).toMatchObject({ release: '0.1.0', engine: 'tflite', vitals: { target: 'linux-armv7' } });
    const started = Date.now();
    const report = await fleet.pushAgentUpdate(update.file, { stageTimeoutMs: 400_000 });
    console.log(
      `agent update of the ${(update.bytes / 2 ** 20).toFixed(1)} MB armv7 bundle to an emulated Pi Zero 2 W: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(report.unable).toContainEqual({ device: 'pi-canary', reason: 'a linux-x64 device; the bundle is linux-armv7' });
    expect(report).toMatchObject({ ok: true, devices: [{ device: 'pi-armv7', release: '0.2.0', updated: true }] });
    expect(stateOf('pi-armv7')).toMatchObject({ release: '0.2.0', update: { version: '0.2.0', status: 'installed' } });
    // apply-update (its Node under qemu-arm too) writes its result once the new agent is healthy, and ends.
    const piLayout = releaseLayout(pi.root);
    await until('the armv7 apply-update finished', () => updatesApplying(pi.root).length === 0 && existsSync(resultFile(piLayout)), 60_000);
    expect(JSON.parse(readFileSync(resultFile(piLayout), 'utf8'))).toMatchObject({ version: '0.2.0', ok: true });
    expect(await health(pi.port)).toMatchObject({ status: 'ok', release: '0.2.0', engine: 'tflite', fleet: { connected: true } });
    // The agent now running is qemu-arm running the new release's own armv7 Node, on the presented board.
    expect(
      readFileSync(`/proc/${pid(pi.root)}/cmdline`, 'utf8')
        .split('\0')
        .join(' '),
    ).toMatch(
      new RegExp(
        `^\\S*qemu-arm\\S* -L /usr/arm-linux-gnueabihf ${pi.root}/opt/edgetune/releases/0\\.2\\.0/node/bin/node .*edgetune\\.js agent`,
      ),
    );
    const starts = readFileSync(releaseLayout(pi.root).log, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"agent started"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(starts.at(-1)).toMatchObject({ profile: 'rpi-zero-2w', engine: 'tflite' });
  }, 600_000);
});
