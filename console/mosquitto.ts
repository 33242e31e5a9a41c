// An external mosquitto broker for fleets that outgrow the embedded one (or need MQTT 5): the console
// writes its config, password file and ACL from the device registry. The ACL is made from the same
// list as the embedded broker's hooks (runtime/sync/acl.ts); %u is mosquitto's placeholder for the login.

import { join } from 'node:path';
import { writeDurably } from '../core/durable.js';
import { mosquittoAcl } from '../runtime/sync/acl.js';
import { checkId } from '../runtime/sync/protocol.js';
import { type DeviceCredentials, mosquittoHash } from './credentials.js';
import { MAX_PACKET_BYTES } from './packet-limit.js';

export interface MosquittoFiles {
  config: string;
  passwords: string;
  acl: string;
}

export function writeMosquittoConfig(
  dir: string,
  options: {
    fleet: string;
    host?: string;
    port: number;
    credentials: DeviceCredentials;
    console: { username: string; password: string };
    /** mosquitto started as root drops to the "mosquitto" user unless told otherwise. */
    user?: string;
    /** Largest MQTT packet (default 2 MB; null: mosquitto's own default of none, for the bench). */
    maxPacketBytes?: number | null;
  },
): MosquittoFiles {
  const fleet = checkId('fleet', options.fleet);
  const files = { config: join(dir, 'mosquitto.conf'), passwords: join(dir, 'passwords'), acl: join(dir, 'acl') };
  const text = (lines: string[]) => new TextEncoder().encode(`${lines.join('\n')}\n`);
  writeDurably(
    files.passwords,
    text([`${options.console.username}:${mosquittoHash(options.console.password)}`, ...options.credentials.mosquittoPasswords()]),
    { mode: 0o600 },
  );
  writeDurably(files.acl, text(mosquittoAcl(fleet, options.console.username)), { mode: 0o600 });
  writeDurably(
    files.config,
    text([
      ...(options.user ? [`user ${options.user}`] : []),
      'per_listener_settings false',
      `listener ${options.port} ${options.host ?? '127.0.0.1'}`,
      'allow_anonymous false',
      // A device's client id is its login: nobody takes the console's id or another device's session.
      'use_username_as_clientid true',
      // Checked on the declared length before mosquitto allocates, so before login too.
      ...(options.maxPacketBytes === null ? [] : [`max_packet_size ${options.maxPacketBytes ?? MAX_PACKET_BYTES}`]),
      `password_file ${files.passwords}`,
      `acl_file ${files.acl}`,
      'persistence false',
      // mosquitto drops what it queues for a client beyond 1,000 messages by default: the console,
      // busy storing 2,000 reconnecting devices' states, would lose some of them for good.
      'max_queued_messages 100000',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
    ]),
  );
  return files;
}
