// A real mosquitto process (Debian's package) on a free loopback port, with the config, password file and
// ACL the console writes from its registry.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import type { DeviceCredentials } from '../../console/credentials.js';
import { writeMosquittoConfig } from '../../console/mosquitto.js';
import { until } from '../../core/wait.js';
import { connectMqtt, freeLoopbackPort } from './mqtt.js';

export const MOSQUITTO = process.env.MOSQUITTO_PATH ?? '/usr/sbin/mosquitto';

export interface RunningMosquitto {
  url: string;
  /** Rewrites the password file and ACL from the registry and has mosquitto reload them (SIGHUP); resolves
   * once `newLogin` (a login the reload adds) is let in. */
  reload(newLogin: { username: string; password: string }): Promise<void>;
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
  let stderr = '';
  broker.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const letsIn = async (login: { username: string; password: string }) => {
    if (broker.exitCode !== null) throw new Error(`mosquitto exited with ${broker.exitCode}: ${stderr}`);
    try {
      (await connectMqtt(url, login.username, login.password, 5, [])).end(true);
      return true;
    } catch {
      return false;
    }
  };
  await until('mosquitto to let the console in', () => letsIn(consoleLogin), 10_000);
  return {
    url,
    async reload(newLogin) {
      write();
      broker.kill('SIGHUP');
      await until(`mosquitto to reload and let ${newLogin.username} in`, () => letsIn(newLogin), 10_000);
    },
    async stop() {
      if (broker.exitCode !== null) return;
      broker.kill('SIGTERM');
      await once(broker, 'close');
    },
  };
}
