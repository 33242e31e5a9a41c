import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceCredentials } from '../../console/credentials.js';
import { FleetConsole } from '../../console/service.js';
import type { Agent } from '../../agent/agent.js';
import { Head } from '../../runtime/head/index.js';
import { encodeHeadMessage } from '../../runtime/sync/head-message.js';
import { topics } from '../../runtime/sync/protocol.js';
import { loadOrCreateFleetKey } from '../../runtime/sync/signing.js';
import { feed, flowerPhotos, startFleetAgent } from '../support/fleet.js';
import { type RunningMosquitto, startMosquitto } from '../support/mosquitto.js';
import { connectMqtt } from '../support/mqtt.js';
import { MODEL_DIR, tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

// One device's login and key in an attacker's hands (pi-3's agent is stopped; the test client speaks
// for it), on both brokers, against two honest real agents. Whatever it sends, the fleet head and the
// honest devices stay as they were, and a problem row names pi-3.
const CLASSES = ['daisy', 'rose'];

describe.each(['embedded', 'mosquitto'] as const)('a device with a stolen login cannot harm the fleet (%s broker)', (kind) => {
  const tmp = tempDir();
  const consoleLogin = { username: 'console-login-x7', password: 'console-secret-k4w9q' };
  let mosquitto: RunningMosquitto | undefined;
  let credentials: DeviceCredentials | undefined;
  let fleet: FleetConsole;
  let honest: Agent[] = [];
  let attacker: MqttClient;
  let stolen: { head: Head; key: ReturnType<typeof loadOrCreateFleetKey> };
  let version = 100;
  const clients: MqttClient[] = [];

  /** pi-3 signs and publishes a head, as its agent would. */
  const send = async (head: Head) => {
    version++;
    const message = encodeHeadMessage(
      head,
      { kind: 'device-head', fleet: 'farm', device: 'pi-3', version, id: `pi-3-evil-${version}` },
      stolen.key.privateKey,
    );
    const before = fleet.registry.problems(10_000).length;
    await attacker.publishAsync(topics.device('farm', 'pi-3', 'head'), Buffer.from(message), { qos: 1 });
    return before;
  };
  const problemAfter = (count: number, code: string) =>
    until(`a ${code} problem`, () =>
      fleet.registry
        .problems(10_000)
        .slice(0, fleet.registry.problems(10_000).length - count)
        .find((p) => p.code === code),
    );
  const honestHeads = () => honest.map((a) => ({ labels: a.currentHead!.labels, fleet: a.currentHead!.meta.metrics.fleetVersion }));

  beforeAll(async () => {
    process.env.EDGETUNE_MODEL_DIR = MODEL_DIR;
    const dir = join(tmp.path, 'console');
    const common = {
      dir,
      fleet: 'farm',
      commandTimeoutMs: 20_000,
      minCanaryHoldout: 0,
      quarantine: { maxRefusals: 4 },
      quotas: { headsPerHour: 12, keptHeads: 5 },
    };
    if (kind === 'mosquitto') {
      mkdirSync(dir, { recursive: true });
      // The mosquitto files are written from the registry's credentials at every reload.
      credentials = new DeviceCredentials(join(dir, 'registry.db'));
      mosquitto = await startMosquitto(join(tmp.path, 'mosquitto'), 'farm', credentials, consoleLogin);
      fleet = await FleetConsole.start({ ...common, externalBroker: { url: mosquitto.url, ...consoleLogin, protocolVersion: 5 } });
    } else fleet = await FleetConsole.start({ ...common, broker: { port: 0 } });
    const logins = ['pi-1', 'pi-2', 'pi-3'].map((id) => fleet.addDevice(id).fleet);
    await mosquitto?.reload(logins[2]!);
    const agents = await Promise.all(
      logins.map((login) =>
        startFleetAgent(
          fleet,
          login.username,
          join(tmp.path, login.username),
          kind === 'mosquitto' ? { protocolVersion: 5 } : {},
          {},
          login,
        ),
      ),
    );
    await Promise.all(agents.map((a, i) => feed(a, CLASSES, i * 8, 8)));
    await Promise.all(agents.map((a) => a.train()));
    await until('three device heads', () => ['pi-1', 'pi-2', 'pi-3'].every((d) => fleet.registry.deviceHeadCount(d) === 1));
    expect(await fleet.mergeAndRollout()).toMatchObject({ status: 'released', labels: CLASSES });
    await until('every device on fleet head v1', () => agents.every((a) => a.currentHead?.meta.metrics.fleetVersion === 1));
    const thief = agents[2]!;
    stolen = { head: thief.currentHead!, key: loadOrCreateFleetKey(join(tmp.path, 'pi-3', 'device.key')) };
    await thief.stop();
    honest = agents.slice(0, 2);
    attacker = await connectMqtt(mosquitto?.url ?? fleet.brokerUrl, 'pi-3', logins[2]!.password, kind === 'mosquitto' ? 5 : 4, clients);
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await Promise.all(honest.map((a) => a.stop()));
    await fleet?.stop();
    await mosquitto?.stop();
    credentials?.close();
    tmp.remove();
  });

  it('an extra class with huge counts and bias stays out of the fleet head; a problem names the device', async () => {
    const { meta, weights, bias } = stolen.head;
    const d = meta.dim;
    const evil = new Head(
      { ...meta, labels: [...meta.labels, 'evil'], counts: [...meta.counts.map(() => 1e6), 1e6] },
      Float32Array.from([...weights, ...weights.subarray(0, d)]),
      Float32Array.from([...bias, 1000]),
      stolen.head.means && Float32Array.from([...stolen.head.means, ...stolen.head.means.subarray(0, d)]),
    );
    const count = await send(evil);
    await until('the evil head stored', () => fleet.registry.deviceHeadCount('pi-3') === 2);
    const result = await fleet.mergeAndRollout();
    expect(result).toMatchObject({ status: 'released', labels: CLASSES, leftOut: [{ label: 'evil', devices: ['pi-3'] }] });
    expect(result.canaries.map((c) => c.device)).not.toContain('pi-3');
    const problem = await problemAfter(count, 'CLASS_NOT_ACCEPTED');
    expect(problem).toMatchObject({ device: 'pi-3' });
    await until('honest devices on the new fleet head', () =>
      honest.every((a) => a.currentHead?.meta.metrics.fleetVersion === result.version),
    );
    for (const agent of honest) {
      expect(agent.currentHead!.labels).toEqual(CLASSES);
      // The honest device's own fresh photos get fleet classes (the attack made them all "evil").
      for (const photo of flowerPhotos('rose', 60, 3)) agent.ingest(photo, null, 'upload');
      await agent.pipeline.idle();
      const predictions = agent.store.list({ labelled: false, limit: 10 }).map((s) => s.prediction);
      expect(predictions.length).toBeGreaterThanOrEqual(3);
      for (const label of predictions) expect(CLASSES).toContain(label);
    }
    expect(fleet.classView().find((c) => c.label === 'evil')).toEqual({ label: 'evil', status: 'pending', devices: ['pi-3'] });
  }, 60_000);

  it('NaN weights, a 300,000-character label and a billion samples are refused at the door, then the device is quarantined', async () => {
    const heads = honestHeads();
    const stored = fleet.registry.deviceHeadCount('pi-3');
    const { meta, weights, bias } = stolen.head;
    // On the wire weights are int8 with a float32 scale per row, biases float32: NaN survives in a bias.
    const nan = new Head(
      meta,
      weights,
      Float32Array.from(bias, (b, c) => (c === 1 ? Number.NaN : b)),
      stolen.head.means,
    );
    const longLabel = new Head({ ...meta, labels: [meta.labels[0]!, 'x'.repeat(300_000)] }, weights, bias, stolen.head.means);
    const billion = new Head({ ...meta, counts: meta.counts.map(() => 1e9) }, weights, bias, stolen.head.means);
    const reasons: string[] = [];
    for (const head of [nan, longLabel, billion]) {
      const count = await send(head);
      reasons.push((await problemAfter(count, 'HEAD_REFUSED')).message);
    }
    expect(reasons[0]).toMatch(/^head of device pi-3 refused: bias 1 is NaN/);
    expect(reasons[1]).toMatch(/^head of device pi-3 refused: label "x+"\.\.\. has 300000 characters, more than 64/);
    expect(reasons[2]).toMatch(/^head of device pi-3 refused: class "daisy" claims 1000000000 samples/);
    const count = await send(nan);
    expect(await problemAfter(count, 'DEVICE_QUARANTINED')).toMatchObject({ device: 'pi-3' });
    expect(fleet.quarantine.list().map((q) => q.device)).toEqual(['pi-3']);
    expect(fleet.registry.deviceHeadCount('pi-3')).toBe(stored);
    // Quarantined: even a good head is refused, and the stored ones are not merged.
    const after = await send(stolen.head);
    expect(await problemAfter(after, 'DEVICE_QUARANTINED')).toMatchObject({ device: 'pi-3' });
    const merged = await fleet.mergeAndRollout();
    expect(merged.merged).toEqual(['pi-1', 'pi-2']);
    expect(merged.skipped.map((s) => s.device)).toEqual(['pi-3']);
    await until('honest devices on the new fleet head', () =>
      honest.every((a) => a.currentHead?.meta.metrics.fleetVersion === merged.version),
    );
    expect(honestHeads().map((h) => h.labels)).toEqual(heads.map((h) => h.labels));
    expect(fleet.releaseDevice('pi-3')).toBe(true);
    expect(fleet.quarantine.list()).toEqual([]);
  }, 60_000);

  it('a flood of heads hits the hourly quota, and the registry keeps only the newest heads', async () => {
    const heads = honestHeads();
    let problem;
    for (let i = 0; i < 15 && !problem; i++) {
      const count = await send(stolen.head);
      problem = await until('the head stored or refused', () => {
        const news = fleet.registry.problems(10_000).slice(0, fleet.registry.problems(10_000).length - count);
        return (
          news.find((p) => p.code === 'DEVICE_QUOTA') ??
          (fleet.registry.deviceHeadIds().some((id) => id === `pi-3-evil-${version}`) && 'stored')
        );
      });
      if (problem === 'stored') problem = undefined;
    }
    expect(problem).toMatchObject({ device: 'pi-3', message: expect.stringMatching(/more than 12 heads within an hour/) });
    expect(fleet.registry.deviceHeadCount('pi-3')).toBe(5);
    expect(honestHeads()).toEqual(heads);
  }, 60_000);

  it("a client with someone else's id never takes the console's place", async () => {
    const password = fleet.addDevice('pi-4').password;
    await mosquitto?.reload({ username: 'pi-4', password });
    if (kind === 'embedded') {
      await expect(connectMqtt(fleet.brokerUrl, 'pi-4', password, 4, clients, `console-farm`)).rejects.toThrow(
        /Identifier rejected|client id/i,
      );
      // One row for the refusal, saying what happened.
      const rows = fleet.registry.problems(20).filter((p) => p.device === 'pi-4');
      expect(rows).toMatchObject([
        { code: 'DEVICE_LOGIN_REFUSED', message: expect.stringMatching(/client id "console-farm" is not the login/) },
      ]);
    } else {
      // mosquitto makes the login the client id: this connection is pi-4's, the console's stays.
      const intruder = await connectMqtt(mosquitto!.url, 'pi-4', password, 5, clients, consoleLogin.username);
      expect(intruder.connected).toBe(true);
    }
    expect(await fleet.command('pi-1', 'state')).toMatchObject({ headVersion: honest[0]!.currentHead!.meta.version });
  }, 30_000);
});
