// A real mosquitto process (Debian's package) on a free loopback port, with the config, password file and
// ACL the console writes from its registry.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { MqttClient } from 'mqtt';
import type { DeviceCredentials } from '../../console/credentials.js';
import { writeMosquittoConfig } from '../../console/mosquitto.js';
import { connectMqtt, freeLoopbackPort } from './mqtt.js';

export const MOSQUITTO = process.env.MOSQUITTO_PATH ?? '/usr/sbin/mosquitto';

export interface RunningMosquitto {
  url: string;
  /** Rewrites the password file and ACL from the registry and has mosquitto reload them (SIGHUP). */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMosquitto(
  dir: string,
  fleet: string,
  credentials: DeviceCredentials,
  consoleLogin: { username: string; password: string },
): Promise<RunningMosquitto> {
  mkdirSync(dir, { recursive: true });
  const port = await freeLoopbackPort();
  const write = () =>
    writeMosquittoConfig(dir, { fleet, port, credentials, console: consoleLogin, ...(process.getuid?.() === 0 ? { user: 'root' } : {}) });
  const files = write();
  const broker: ChildProcess = spawn(MOSQUITTO, ['-c', files.config], { stdio: ['ignore', 'ignore', 'pipe'] });
  const url = `mqtt://127.0.0.1:${port}`;
  const probe: MqttClient[] = [];
  for (let i = 0; ; i++) {
    try {
      (await connectMqtt(url, consoleLogin.username, consoleLogin.password, 5, probe)).end(true);
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    url,
    async reload() {
      write();
      broker.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 300));
    },
    async stop() {
      if (broker.exitCode !== null) return;
      broker.kill('SIGTERM');
      await once(broker, 'close');
    },
  };
}
