// Real MQTT clients for the broker tests (embedded aedes and a mosquitto process).

import { type EventEmitter, once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '../../runtime/sync/protocol.js';

/** The next `event` of an MQTT client (its typings are not a Node EventEmitter's). */
export function nextEvent(client: MqttClient, event: string): Promise<unknown[]> {
  return once(client as unknown as EventEmitter, event);
}

/** Connects, or rejects with the broker's refusal; every client is kept in `clients` for cleanup. */
export async function connectMqtt(
  url: string,
  username: string,
  password: string,
  protocolVersion: 4 | 5,
  clients: MqttClient[],
  /** Brokers bind the client id to the login: by default a client uses its login. */
  clientId = username,
): Promise<MqttClient> {
  const client = mqtt.connect(url, { username, password, protocolVersion, clientId, reconnectPeriod: 0, connectTimeout: 5000 });
  clients.push(client);
  await Promise.race([
    nextEvent(client, 'connect'),
    nextEvent(client, 'error').then(([err]) => {
      throw err;
    }),
  ]);
  return client;
}

/** Device pi-a publishes a head; returns what the console received. */
export async function headFromDeviceToConsole(
  connect: (user: string, password: string) => Promise<MqttClient>,
  consoleLogin: { username: string; password: string },
  devicePassword: string,
): Promise<{ topic: string; payload: string }> {
  const console_ = await connect(consoleLogin.username, consoleLogin.password);
  await console_.subscribeAsync(topics.allDevices('farm'), { qos: 1 });
  const a = await connect('pi-a', devicePassword);
  const received = nextEvent(console_, 'message');
  await a.publishAsync(topics.device('farm', 'pi-a', 'head'), Buffer.from('head bytes'), { qos: 1 });
  const [topic, payload] = (await received) as [string, Buffer];
  return { topic, payload: payload.toString() };
}

/** A loopback port nothing listens on right now (for a broker a test starts, stops and restarts). */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}
