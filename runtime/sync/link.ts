// A device's connection to the fleet broker: the outbox drains whenever the link is up, and a lost
// link comes back with exponential backoff and full jitter, so a broker restart does not bring every
// device back in the same second.

import mqtt, { type IClientPublishOptions, type MqttClient } from 'mqtt';
import { backoffDelay } from '../../core/backoff.js';
import { errorMessage } from '../../core/errors.js';
import type { Outbox } from './outbox.js';

export interface LinkOptions {
  url: string;
  username: string;
  password: string;
  protocolVersion?: 4 | 5;
  /** Last will: published by the broker when the device vanishes (marks it offline). */
  will?: { topic: string; payload: string };
  /** Base reconnect delay; doubles per failure up to a minute, with jitter. */
  reconnectBaseMs?: number;
  onEvent?: (event: { msg: string; error?: string; retryInMs?: number }) => void;
  /** Called on every connection; the outbox drains after it settles. A device states itself online
   * here, before anything queued (the broker may have published its last will meanwhile, and the
   * console verifies heads with the key the state carries). */
  onConnect?: () => Promise<unknown> | void;
}

/** MQTT 5 request/response properties of a received message (absent on MQTT 3.1.1). */
export interface MessageProperties {
  responseTopic?: string | undefined;
  correlationData?: Buffer | undefined;
}
export type MessageHandler = (topic: string, payload: Buffer, properties: MessageProperties) => void;

export class DeviceLink {
  private client: MqttClient | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private stopped = false;
  private readonly subscriptions = new Map<string, MessageHandler>();
  connected = false;
  /** Successful connections so far (reconnects included). */
  connects = 0;

  constructor(
    private readonly outbox: Outbox,
    private readonly options: LinkOptions,
  ) {}

  start(): void {
    this.connect();
  }

  /** Queues a message durably and sends it as soon as the link allows. */
  send(topic: string, payload: Uint8Array, options: { retain?: boolean } = {}): void {
    this.outbox.push(topic, payload, options);
    void this.drain();
  }

  /** Subscribes now and after every reconnect (QoS 1); retained messages arrive on each subscribe. */
  subscribe(topic: string, handler: MessageHandler): void {
    this.subscriptions.set(topic, handler);
    if (this.connected) this.client?.subscribe(topic, { qos: 1 });
  }

  /** Publishes now, not durably (replies to commands): false when the link is down or the broker
   * refused it; the console's wait for the reply then times out. */
  async publishNow(
    topic: string,
    payload: Uint8Array,
    options: { retain?: boolean; properties?: IClientPublishOptions['properties'] } = {},
  ): Promise<boolean> {
    if (!this.connected || !this.client) return false;
    try {
      const properties = this.options.protocolVersion === 5 && options.properties ? { properties: options.properties } : {};
      await this.client.publishAsync(topic, Buffer.from(payload), { qos: 1, retain: options.retain ?? false, ...properties });
      return true;
    } catch (err) {
      this.options.onEvent?.({ msg: `could not publish to ${topic}`, error: errorMessage(err) });
      return false;
    }
  }

  /** Waits (up to `timeoutMs`) for the outbox to empty while the link is up. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.connected && this.outbox.size > 0 && Date.now() < deadline) {
      void this.drain();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.client?.endAsync();
  }

  private connect(): void {
    if (this.stopped) return;
    const client = mqtt.connect(this.options.url, {
      username: this.options.username,
      password: this.options.password,
      protocolVersion: this.options.protocolVersion ?? 4,
      // Brokers bind the client id to the login (docs/protocol.md#threat-model).
      ...(this.options.username ? { clientId: this.options.username } : {}),
      reconnectPeriod: 0, // our own backoff, below
      connectTimeout: 10_000,
      clean: true,
      ...(this.options.will
        ? { will: { topic: this.options.will.topic, payload: Buffer.from(this.options.will.payload), qos: 1, retain: true } }
        : {}),
    });
    this.client = client;
    client.on('message', (topic, payload, packet) => {
      const properties = packet.properties
        ? { responseTopic: packet.properties.responseTopic, correlationData: packet.properties.correlationData }
        : {};
      for (const [filter, handler] of this.subscriptions) if (matches(filter, topic)) handler(topic, payload, properties);
    });
    client.on('connect', () => {
      for (const topic of this.subscriptions.keys()) client.subscribe(topic, { qos: 1 });
      this.connected = true;
      this.connects++;
      this.failures = 0;
      this.options.onEvent?.({ msg: 'connected to the fleet broker' });
      void Promise.resolve()
        .then(() => this.options.onConnect?.())
        .catch((err: unknown) => this.options.onEvent?.({ msg: 'on-connect step failed', error: errorMessage(err) }))
        .then(() => this.drain());
    });
    client.on('error', (err) => this.options.onEvent?.({ msg: 'fleet broker error', error: errorMessage(err) }));
    client.on('close', () => {
      this.connected = false;
      if (this.stopped) return;
      client.removeAllListeners();
      client.end(true);
      this.failures++;
      const delay = backoffDelay(this.failures, this.options.reconnectBaseMs ?? 1000);
      this.options.onEvent?.({ msg: 'fleet broker link lost; reconnecting', retryInMs: delay });
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  /** Publishes queued messages in order; each leaves the outbox only after the broker's PUBACK. A
   * message the broker refuses while the link stays up (MQTT 5 "not authorized") would block the queue
   * for good: it is dropped and reported instead. A lost link keeps it for the next connection. */
  private async drain(): Promise<void> {
    if (this.draining || !this.connected || !this.client) return;
    this.draining = true;
    try {
      for (;;) {
        const batch = this.outbox.peek();
        if (batch.length === 0 || !this.connected) return;
        for (const message of batch) {
          try {
            await this.client.publishAsync(message.topic, message.payload, { qos: 1, retain: message.retain });
          } catch (err) {
            if (!this.connected) throw err;
            this.options.onEvent?.({ msg: `broker refused a message to ${message.topic}; dropped`, error: errorMessage(err) });
          }
          this.outbox.acknowledge(message.seq);
        }
      }
    } catch (err) {
      this.options.onEvent?.({ msg: 'publish failed; will retry', error: errorMessage(err) });
    } finally {
      this.draining = false;
    }
  }
}

/** MQTT topic filter matching (+ one level, # the rest). */
export function matches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}
