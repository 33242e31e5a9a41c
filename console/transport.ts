// How the console reaches its broker. Embedded (default): an aedes broker in this process; device
// messages arrive in-process before the broker acknowledges them, and the console publishes without a
// network client. External (mosquitto, or an EMQX/HiveMQ cluster): the console is an MQTT client with a
// persistent session (clean: false), so messages sent while it was away wait for it at the broker.

import mqtt, { type MqttClient } from 'mqtt';
import { errorMessage } from '../core/errors.js';
import { type BrokerOptions, type RunningBroker, startBroker } from './broker.js';
import type { DeviceCredentials } from './credentials.js';

export interface PublishOptions {
  retain?: boolean;
  /** MQTT 5 request/response properties (dropped on MQTT 3.1.1). */
  responseTopic?: string;
  correlationData?: Buffer;
}

/** Called with each device message; a returned promise settles once it is on disk, and the broker is
 * acknowledged then (a rejection: it was not written, and the broker keeps it). */
export type DeviceMessageHandler = (message: { topic: string; payload: Buffer }) => void | Promise<void>;

export interface Transport {
  /** The URL devices connect to. */
  readonly url: string;
  readonly kind: 'embedded' | 'external';
  publish(topic: string, payload: Buffer, options?: PublishOptions): Promise<void>;
  /** Called after the transport (re)connects: retained state the broker may have lost goes out again. */
  onReady(handler: () => void): void;
  close(): Promise<void>;
}

export interface EmbeddedBrokerOptions {
  host?: string;
  port?: number;
}

export class EmbeddedTransport implements Transport {
  readonly kind = 'embedded';
  private ready: (() => void) | undefined;

  private constructor(
    private broker: RunningBroker,
    private readonly start: () => Promise<RunningBroker>,
  ) {}

  static async open(
    fleet: string,
    credentials: DeviceCredentials,
    options: EmbeddedBrokerOptions,
    deliver: DeviceMessageHandler,
    watch: Pick<BrokerOptions, 'onRefusal' | 'onDeviceDisconnect'> = {},
  ): Promise<EmbeddedTransport> {
    // The console's own login on its own broker: nothing outside this process needs it.
    const consoleLogin = { username: `console-${fleet}`, password: crypto.randomUUID() };
    let port = options.port ?? 1883;
    const start = async () => {
      const broker = await startBroker({
        fleet,
        host: options.host ?? '127.0.0.1',
        port,
        credentials,
        console: consoleLogin,
        onDeviceMessage: deliver,
        ...watch,
      });
      port = Number(new URL(broker.url).port);
      return broker;
    };
    return new EmbeddedTransport(await start(), start);
  }

  get url(): string {
    return this.broker.url;
  }

  publish(topic: string, payload: Buffer, options: PublishOptions = {}): Promise<void> {
    return this.broker.publish(topic, payload, { retain: options.retain ?? false });
  }

  onReady(handler: () => void): void {
    this.ready = handler;
    handler();
  }

  /** Stops and starts the broker on the same port (every device reconnects; retained messages are
   * published again). */
  async restart(): Promise<void> {
    await this.broker.close();
    this.broker = await this.start();
    this.ready?.();
  }

  close(): Promise<void> {
    return this.broker.close();
  }
}

type SendPacket = (packet: { cmd: string; messageId?: number }, cb?: (err?: Error) => void, ...rest: unknown[]) => void;

/** Device messages from the broker, each acknowledged (PUBACK) only once it is written, so a console
 * that dies first gets it again from its persistent session. MQTT.js handles one incoming packet at a
 * time and sends the PUBACK when handleMessage calls back; waiting there would write one message per
 * turn of the event loop. So handleMessage calls back at once, MQTT.js reads on (a burst lands in one
 * batch, console/ingest.ts), and the PUBACK itself is held back in MQTT.js's packet writer
 * (`_sendPacket`, internal; without it, handleMessage waits instead) until the write settles: sent on
 * the connection the message came on, not at all if that one closed or the write failed (the broker
 * sends it again). */
function deliverWrittenBeforeAck(client: MqttClient, deliver: DeviceMessageHandler): void {
  const internals = client as unknown as { _sendPacket?: SendPacket; stream: unknown };
  const send = internals._sendPacket?.bind(client);
  const held = new Map<number, Promise<void>>();
  client.handleMessage = (packet, callback) => {
    if (packet.cmd !== 'publish') return callback();
    const written = deliver({ topic: packet.topic.toString(), payload: Buffer.from(packet.payload as Buffer) });
    if (!written) return callback();
    if (send && packet.qos === 1 && packet.messageId !== undefined) {
      held.set(packet.messageId, written);
      return callback();
    }
    written.then(
      () => callback(),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  };
  if (!send) return;
  internals._sendPacket = (packet, cb, ...rest) => {
    const written = packet.cmd === 'puback' && packet.messageId !== undefined ? held.get(packet.messageId) : undefined;
    if (!written) return send(packet, cb, ...rest);
    held.delete(packet.messageId!);
    const stream = internals.stream;
    written.then(
      () => {
        if (internals.stream === stream && client.connected) send(packet);
      },
      () => {},
    );
    cb?.();
  };
}

export interface ExternalBrokerOptions {
  url: string;
  username: string;
  password: string;
  protocolVersion?: 4 | 5;
}

export class ExternalTransport implements Transport {
  readonly kind = 'external';
  private readyHandler: (() => void) | undefined;

  private constructor(
    private readonly client: MqttClient,
    readonly url: string,
    private readonly protocolVersion: 4 | 5,
  ) {}

  static async open(
    fleet: string,
    options: ExternalBrokerOptions,
    deliver: DeviceMessageHandler,
    onEvent: (msg: string, error?: string) => void,
  ): Promise<ExternalTransport> {
    const protocolVersion = options.protocolVersion ?? 5;
    const client = mqtt.connect(options.url, {
      username: options.username,
      password: options.password,
      protocolVersion,
      // The login is the client id (mosquitto: use_username_as_clientid), so no device can take it.
      clientId: options.username,
      clean: false,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 7 * 24 * 3600 } } : {}),
    });
    const transport = new ExternalTransport(client, options.url, protocolVersion);
    const filter = `edgetune/${fleet}/device/#`;
    deliverWrittenBeforeAck(client, deliver);
    client.on('error', (err) => onEvent('console broker error', errorMessage(err)));
    client.on('offline', () => onEvent('console lost the broker; reconnecting'));
    client.on('connect', (ack) => {
      // A persistent session keeps the subscription; subscribing again is harmless and covers a broker
      // that forgot it (no persistence).
      if (!ack.sessionPresent) client.subscribe(filter, { qos: 1, ...(protocolVersion === 5 ? { nl: true } : {}) });
      onEvent('console connected to the broker');
      transport.readyHandler?.();
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', (err) => reject(new Error(`${options.url}: ${errorMessage(err)}`)));
    });
    return transport;
  }

  async publish(topic: string, payload: Buffer, options: PublishOptions = {}): Promise<void> {
    const properties =
      this.protocolVersion === 5 && options.responseTopic
        ? { responseTopic: options.responseTopic, ...(options.correlationData ? { correlationData: options.correlationData } : {}) }
        : undefined;
    await this.client.publishAsync(topic, payload, { qos: 1, retain: options.retain ?? false, ...(properties ? { properties } : {}) });
  }

  onReady(handler: () => void): void {
    this.readyHandler = handler;
    if (this.client.connected) handler();
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}
