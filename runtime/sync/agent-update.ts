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
import type { ErrorCode } from '../../core/errors.js';
import { parseWith } from '../../core/schema.js';
import { SyncError, checkId } from './protocol.js';
import { openEnvelope, sealEnvelope } from './envelope.js';

const MAGIC = 'ETAU';

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
  return sealEnvelope(MAGIC, AgentUpdateSchema.parse(update), new Uint8Array(0), key);
}

/** Verifies and decodes; refusals are SyncErrors naming `where`. */
export function decodeAgentUpdate(bytes: Uint8Array, expect: { where: string; publicKey: KeyObject; fleet: string }): AgentUpdate {
  const fail = (code: ErrorCode, why: string): never => {
    throw new SyncError(code, `${expect.where}: ${why}`);
  };
  const { header: json, payload } = openEnvelope(bytes, {
    magic: MAGIC,
    what: 'agent update',
    where: expect.where,
    publicKey: expect.publicKey,
    signer: 'the fleet key',
  });
  if (payload.length !== 0) fail('SYNC_MALFORMED', 'header length does not match the message');
  const update = parseWith(AgentUpdateSchema, json, expect.where, SyncError, 'SYNC_MALFORMED');
  if (update.fleet !== expect.fleet) fail('SYNC_MALFORMED', `an update for fleet "${update.fleet}", this device is in "${expect.fleet}"`);
  return update;
}
