// An agent update on the wire (protocol v1): a signed manifest, retained on edgetune/{fleet}/fleet/agent,
// naming a bundle that travels as chunks on edgetune/{fleet}/blobs/{sha256}/{n} (chunks.ts).
//
//   magic "ETAU" | protocol u16 | reserved u16 | header length u32 | header JSON | ed25519 signature (64)
//
// The signature (fleet key) covers every byte before it. The bundle's sha256 is in the signed header,
// and the chunk assembler checks the reassembled file against it, so a device installs only bytes the
// fleet key vouched for. `sequence` only grows: an older manifest (a downgrade replayed) is refused.

import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { parseWith } from '../schema.js';
import { PROTOCOL_VERSION, SyncError, checkId } from './protocol.js';
import { SIGNATURE_BYTES, signBytes, verifyBytes } from './signing.js';

const MAGIC = 'ETAU';
const PREAMBLE = 12;

export const AgentUpdateSchema = z.object({
  kind: z.literal('agent-update'),
  fleet: z.string().min(1),
  /** The release version (a folder name under releases/). */
  version: z.string().regex(/^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/),
  target: z.enum(['linux-arm64', 'linux-x64']),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().positive(),
  chunks: z.number().int().positive(),
  /** Only these devices apply it (a canary stage); null: every device of the fleet. */
  devices: z.array(z.string()).nullable(),
  /** Grows with every manifest the console signs. */
  sequence: z.number().int().positive(),
  createdAt: z.string(),
});
export type AgentUpdate = z.infer<typeof AgentUpdateSchema>;

export function encodeAgentUpdate(update: AgentUpdate, key: KeyObject): Uint8Array {
  checkId('fleet', update.fleet);
  const json = Buffer.from(JSON.stringify(AgentUpdateSchema.parse(update)), 'utf8');
  const body = Buffer.alloc(PREAMBLE + json.length);
  body.write(MAGIC, 0, 'latin1');
  body.writeUInt16LE(PROTOCOL_VERSION, 4);
  body.writeUInt32LE(json.length, 8);
  json.copy(body, PREAMBLE);
  return Buffer.concat([body, signBytes(body, key)]);
}

/** Verifies and decodes; refusals are SyncErrors naming `where`. */
export function decodeAgentUpdate(bytes: Uint8Array, expect: { where: string; publicKey: KeyObject; fleet: string }): AgentUpdate {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (code: string, why: string): never => {
    throw new SyncError(code, `${expect.where}: ${why}`);
  };
  if (buf.length < PREAMBLE + SIGNATURE_BYTES || buf.toString('latin1', 0, 4) !== MAGIC) fail('SYNC_MALFORMED', 'not an edgetune agent update');
  const protocol = buf.readUInt16LE(4);
  if (protocol !== PROTOCOL_VERSION) fail('SYNC_PROTOCOL_VERSION', `protocol v${protocol} message; this edgetune speaks v${PROTOCOL_VERSION}`);
  const body = buf.subarray(0, buf.length - SIGNATURE_BYTES);
  if (!verifyBytes(body, buf.subarray(buf.length - SIGNATURE_BYTES), expect.publicKey)) fail('SYNC_BAD_SIGNATURE', 'agent update signature does not verify against the fleet key: forged or tampered; refused');
  const length = buf.readUInt32LE(8);
  if (PREAMBLE + length !== body.length) fail('SYNC_MALFORMED', 'header length does not match the message');
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8', PREAMBLE));
  } catch {
    fail('SYNC_MALFORMED', 'header is not JSON');
  }
  const update = parseWith(AgentUpdateSchema, json, expect.where, SyncError, 'SYNC_MALFORMED');
  if (update.fleet !== expect.fleet) fail('SYNC_MALFORMED', `an update for fleet "${update.fleet}", this device is in "${expect.fleet}"`);
  return update;
}
