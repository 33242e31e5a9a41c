import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningBroker, startBroker } from '../../console/broker.js';
import { DeviceCredentials } from '../../console/credentials.js';
import { DeviceLink } from '../../runtime/sync/link.js';
import { Outbox } from '../../runtime/sync/outbox.js';
import { topics } from '../../runtime/sync/protocol.js';
import { freeLoopbackPort } from '../support/mqtt.js';
import { tempDir } from '../support/paths.js';
import { until } from '../support/until.js';

const tmp = tempDir();
afterAll(() => tmp.remove());

describe('durable outbox', () => {
  it('keeps messages across a restart, in order, until acknowledged; a full outbox drops the oldest', () => {
    const path = join(tmp.path, 'outbox.db');
    const first = new Outbox(path, 3);
    for (const n of [1, 2, 3, 4]) first.push(`t/${n}`, Buffer.from(`m${n}`));
    first.close();
    const again = new Outbox(path, 3);
    expect(again.peek().map((m) => m.topic)).toEqual(['t/2', 't/3', 't/4']);
    again.acknowledge(again.peek()[0]!.seq);
    expect(again.peek().map((m) => m.payload.toString())).toEqual(['m3', 'm4']);
    again.close();
  });

  it('keeps only the newest retained message per topic, and every plain one', () => {
    const outbox = new Outbox(join(tmp.path, 'retained.db'));
    outbox.push('d/state', Buffer.from('s1'), { retain: true });
    outbox.push('d/head', Buffer.from('h1'));
    outbox.push('d/state', Buffer.from('s2'), { retain: true });
    outbox.push('d/head', Buffer.from('h2'));
    expect(outbox.peek().map((m) => `${m.topic}=${m.payload.toString()}`)).toEqual(['d/head=h1', 'd/state=s2', 'd/head=h2']);
    outbox.close();
  });
});

describe('device link to the fleet broker', () => {
  it('sends what was queued while the broker was down, and every head survives broker restarts', async () => {
    const credentials = new DeviceCredentials(join(tmp.path, 'registry.db'));
    const password = credentials.issue('pi-a');
    const port = await freeLoopbackPort();
    const received: string[] = [];
    const start = () =>
      startBroker({
        fleet: 'farm',
        port,
        credentials,
        console: { username: 'console', password: 'console-secret-123' },
        onDeviceMessage: (m) => received.push(m.payload.toString()),
      });
    const outbox = new Outbox(join(tmp.path, 'device-outbox.db'));
    const link = new DeviceLink(outbox, { url: `mqtt://127.0.0.1:${port}`, username: 'pi-a', password, reconnectBaseMs: 50 });
    const headTopic = topics.device('farm', 'pi-a', 'head');
    let broker: RunningBroker | undefined;
    try {
      link.start();
      // Offline: the heads wait in the outbox.
      for (let i = 0; i < 5; i++) link.send(headTopic, Buffer.from(`head-${i}`));
      await new Promise((r) => setTimeout(r, 200));
      expect(outbox.size).toBe(5);
      broker = await start();
      await until('the queued heads delivered', () => outbox.size === 0);
      // Three broker restarts while the device keeps publishing.
      let sent = 5;
      for (let restart = 0; restart < 3; restart++) {
        const connects = link.connects;
        for (let i = 0; i < 5; i++) link.send(headTopic, Buffer.from(`head-${sent++}`));
        await broker.close();
        for (let i = 0; i < 5; i++) link.send(headTopic, Buffer.from(`head-${sent++}`));
        broker = await start();
        await until(`reconnect after restart ${restart + 1}`, () => link.connects > connects);
      }
      await until('every head delivered', () => outbox.size === 0 && new Set(received).size === sent);
      // Each head arrives at least once; de-duplicated by id, exactly the heads that were sent.
      expect([...new Set(received)].sort()).toEqual(Array.from({ length: sent }, (_, i) => `head-${i}`).sort());
      expect(link.connects).toBeGreaterThanOrEqual(4);
    } finally {
      await link.stop();
      await broker?.close();
      outbox.close();
      credentials.close();
    }
  }, 60_000);
});
