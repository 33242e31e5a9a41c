// The simulated devices of bench/fleet-scale.ts, in a process of their own (as devices are other
// machines, their work does not share the console's event loop): each runs the agent's broker link and
// durable outbox, publishing the agent's state with vitals, retained, with a last will, on every
// (re)connect. Stops its links on SIGTERM.
//
//   node dist/bench/fleet-sim-devices.js CONFIG.json   ({url, fleet, devices: [{id, password}]})

import { readFileSync } from 'node:fs';
import { readVitals } from '../devices/vitals.js';
import { DeviceLink } from '../runtime/sync/link.js';
import { Outbox } from '../runtime/sync/outbox.js';
import { PROTOCOL_VERSION, topics } from '../runtime/sync/protocol.js';

const config = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  url: string;
  fleet: string;
  devices: { id: string; password: string }[];
};
const vitals = readVitals({ thermalFile: '/sys/class/thermal/thermal_zone0/temp', dataDir: '/tmp' });
const links = config.devices.map(({ id, password }, i) => {
  const stateTopic = topics.device(config.fleet, id, 'state');
  const state = () =>
    Buffer.from(
      JSON.stringify({
        protocol: PROTOCOL_VERSION,
        device: id,
        online: true,
        backbone: 'bench',
        dim: 8,
        release: '0.1.0',
        updatable: true,
        vitals: { ...vitals, cpuTempC: 40 + (i % 40) },
        uptimeSeconds: i,
        sources: [],
        at: new Date().toISOString(),
      }),
    );
  const link: DeviceLink = new DeviceLink(new Outbox(':memory:'), {
    url: config.url,
    username: id,
    password,
    will: { topic: stateTopic, payload: JSON.stringify({ protocol: PROTOCOL_VERSION, device: id, online: false }) },
    onConnect: async () => {
      await link.publishNow(stateTopic, state(), { retain: true });
    },
  });
  return link;
});
for (const link of links) link.start();
process.on('SIGTERM', () => {
  void Promise.all(links.map((l) => l.stop())).then(() => process.exit(0));
});
