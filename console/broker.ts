// The console's embedded MQTT broker (aedes): devices log in with their own credentials and may publish
// only under their own device/{id}/ topics (never commands) and subscribe only to fleet topics, blobs
// and their own commands. The console itself connects as its own user with full rights. Refusals are
// kept so the console can report which device tried what.
//
// aedes speaks MQTT 3.1.1, not 5: on the embedded broker, replies to commands carry their topic and
// correlation id in the JSON payload; an external mosquitto serves MQTT 5 fleets.

import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type AuthenticateError } from 'aedes';
import { deviceMaySubscribe } from '../runtime/sync/acl.js';
import { checkId, devicePublishAllowed } from '../runtime/sync/protocol.js';
import type { DeviceCredentials } from './credentials.js';
import { LoginGuard, type LoginGuardOptions } from './login-guard.js';
import { MAX_PACKET_BYTES, limitPackets } from './packet-limit.js';

export interface BrokerOptions {
  fleet: string;
  host?: string;
  port?: number;
  credentials: DeviceCredentials;
  /** The console's own login. */
  console: { username: string; password: string };
  /** Every message a device published (after the ACL), delivered in-process to the console before the
   * broker acknowledges it: what the console has stored is never lost to a broker that dies before its
   * PUBACK; the device then sends it again and the console drops the duplicate by message id. A
   * returned promise holds the PUBACK until it settles (the console writes in batches). */
  onDeviceMessage?: (message: { device: string; topic: string; payload: Buffer }) => unknown;
  /** Every refusal as it happens (the console records it as a problem and a log line). */
  onRefusal?: (refusal: Refusal) => void;
  /** Largest MQTT packet, checked before login too (default 2 MB; Infinity: aedes alone, for the bench). */
  maxPacketBytes?: number;
  /** Delays of failed logins (console/login-guard.ts). */
  logins?: LoginGuardOptions;
  /** A device's session ended (the console notices a device that keeps losing its link). */
  onDeviceDisconnect?: (device: string) => void;
}

export interface Refusal {
  device: string;
  action: 'publish' | 'subscribe' | 'connect' | 'packet';
  topic: string;
  at: number;
  reason?: string;
  /** Why a login was refused: a client id that is not the login, a bad password, or an address that
   * failed so often it is refused unchecked. */
  cause?: 'client-id' | 'password' | 'address-blocked';
}

export interface RunningBroker {
  url: string;
  refusals: Refusal[];
  /** Publishes as the console, in-process (QoS 1). */
  publish(topic: string, payload: Buffer, options?: { retain?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  checkId('fleet', options.fleet);
  const refusals: Refusal[] = [];
  const refuse = (refusal: Omit<Refusal, 'at'>) => {
    const entry = { ...refusal, at: Date.now() };
    refusals.push(entry);
    if (refusals.length > 1000) refusals.shift();
    try {
      options.onRefusal?.(entry);
    } catch {
      // Reporting must never take the broker down.
    }
  };
  const guard = new LoginGuard(options.logins);
  const isConsole = (client: { id: string } | null) =>
    client !== null && (client as unknown as { user?: string }).user === options.console.username;
  const broker = await Aedes.createBroker({
    authenticate: (client, username, password, done) => {
      // A client id is the login: no device can take the console's id or another device's session.
      if (username !== options.console.username && client.id !== username) {
        refuse({
          device: username ?? '(no username)',
          action: 'connect',
          topic: '',
          reason: `client id "${client.id.slice(0, 64)}" is not the login`,
          cause: 'client-id',
        });
        return done(Object.assign(new Error('the client id must be the login'), { returnCode: 2 }) as AuthenticateError, false);
      }
      const address = (client as unknown as { conn?: { remoteAddress?: string } }).conn?.remoteAddress;
      const blocked = guard.blocked(address);
      const check = blocked
        ? Promise.resolve(false)
        : username === options.console.username
          ? Promise.resolve(password !== undefined && sameSecret(Buffer.from(password), options.console.password))
          : options.credentials.verify(username, password);
      void check
        .catch(() => false)
        .then((ok) => {
          if (!ok) {
            const delay = guard.failed(username, address);
            refuse({
              device: username ?? '(no username)',
              action: 'connect',
              topic: '',
              reason: blocked
                ? `too many failed logins from ${address}`
                : `bad username or password from ${address}; answered after ${delay} ms`,
              cause: blocked ? 'address-blocked' : 'password',
            });
            const error = Object.assign(new Error(`bad username or password for "${username ?? ''}"`), {
              returnCode: 4,
            }) as AuthenticateError;
            setTimeout(() => done(error, false), delay).unref();
            return;
          }
          guard.succeeded(username!);
          (client as unknown as { user?: string }).user = username;
          done(null, true);
        });
    },
    authorizePublish: (client, packet, callback) => {
      if (client === null || isConsole(client)) return callback(null);
      const device = (client as unknown as { user: string }).user;
      if (devicePublishAllowed(options.fleet, device, packet.topic)) {
        // A console that answers with a promise has the device's PUBACK wait until the message is written.
        let written: unknown;
        try {
          written = options.onDeviceMessage?.({ device, topic: packet.topic, payload: Buffer.from(packet.payload as Buffer) });
        } catch {
          // The console reports what it cannot use; the broker's job is only to deliver.
        }
        if (!(written instanceof Promise)) return callback(null);
        written.then(
          () => callback(null),
          (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
        );
        return;
      }
      refuse({ device, action: 'publish', topic: packet.topic });
      callback(new Error(`device ${device} may not publish to ${packet.topic}`));
    },
    authorizeSubscribe: (client, subscription, callback) => {
      if (isConsole(client)) return callback(null, subscription);
      const device = (client as unknown as { user: string }).user;
      if (deviceSubscribeAllowed(options.fleet, device, subscription.topic)) return callback(null, subscription);
      refuse({ device, action: 'subscribe', topic: subscription.topic });
      callback(null, null);
    },
  });
  broker.on('clientDisconnect', (client) => {
    const user = (client as unknown as { user?: string }).user;
    if (user !== undefined && !isConsole(client)) options.onDeviceDisconnect?.(user);
  });
  const maxPacket = options.maxPacketBytes ?? MAX_PACKET_BYTES;
  const server: Server = createServer((socket: Socket) =>
    maxPacket === Infinity
      ? broker.handle(socket)
      : broker.handle(
          limitPackets(socket, maxPacket, (declared) =>
            refuse({
              device: '(not logged in yet, or any)',
              action: 'packet',
              topic: '',
              reason: `a packet of ${declared} bytes from ${socket.remoteAddress}; at most ${maxPacket}`,
            }),
          ),
        ),
  );
  await new Promise<void>((resolve) => server.listen(options.port ?? 1883, options.host ?? '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `mqtt://${address.address}:${address.port}`,
    refusals,
    publish: (topic, payload, publishOptions = {}) =>
      new Promise<void>((resolve, reject) =>
        broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: publishOptions.retain ?? false, dup: false }, (err) =>
          err ? reject(err) : resolve(),
        ),
      ),
    close: async () => {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A device reads fleet heads, blobs and its own commands; nothing of other devices (runtime/sync/acl.ts). */
export function deviceSubscribeAllowed(fleet: string, device: string, filter: string): boolean {
  return deviceMaySubscribe(fleet, device, filter);
}

function sameSecret(given: Buffer, expected: string): boolean {
  const want = Buffer.from(expected);
  return given.length === want.length && timingSafeEqual(given, want);
}
