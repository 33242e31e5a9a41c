// The last step of a health check: the console's view. Subscribed (with the console's broker login)
// before the agent restarts, it waits for the device's retained state message saying it is online and
// runs the new release.

import mqtt, { type MqttClient } from 'mqtt';
import { DeployError } from '../../core/errors.js';
import { topics } from '../../runtime/sync/protocol.js';

export interface BrokerLogin {
  url: string;
  username: string;
  password: string;
  protocolVersion?: 4 | 5;
}

export class StateWatch {
  private readonly states: Record<string, unknown>[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly client: MqttClient) {}

  static async open(login: BrokerLogin, fleet: string, device: string): Promise<StateWatch> {
    const client = mqtt.connect(login.url, {
      username: login.username,
      password: login.password,
      protocolVersion: login.protocolVersion ?? 4,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
    });
    const watch = new StateWatch(client);
    client.on('message', (_topic, payload: Buffer) => {
      try {
        watch.states.push(JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
      } catch {
        return;
      }
      for (const w of watch.waiters.splice(0)) w();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', (err) => reject(new DeployError('DEPLOY_BROKER', `the console's broker ${login.url}: ${err.message}`)));
      });
      await client.subscribeAsync(topics.device(fleet, device, 'state'), { qos: 1 });
    } catch (err) {
      client.end(true);
      throw err;
    }
    return watch;
  }

  /** Resolves with the first state message online on `release`. */
  async waitFor(release: string, timeoutMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.states.find((s) => s.online === true && s.release === release);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const last = this.states.at(-1);
        throw new DeployError(
          'DEPLOY_HEALTH_FAILED',
          `no MQTT state message from the device on release ${release} within ${Math.round(timeoutMs / 1000)} s${last ? ` (last: online ${String(last.online)}, release ${String(last.release ?? null)})` : ' (none at all)'}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.client.end(true);
  }
}
