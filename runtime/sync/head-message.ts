// A head on the wire (protocol v1): one signed binary message.
//
//   magic "ETHM" | protocol u16 | reserved u16 | header length u32 | header JSON | head file (ETHD) | ed25519 signature (64)
//
// The signature covers every byte before it. A device applies a fleet head only if the signature
// verifies against the fleet public key it was provisioned with, the version is newer than the one it
// has (a replayed older message is refused), and the backbone matches its own.

import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { type ErrorCode, HeadError } from '../../core/errors.js';
import { type Head, decodeHead, encodeHead } from '../head/index.js';
import { sha256Hex } from '../../core/hash.js';
import { parseWith } from '../../core/schema.js';
import { openEnvelope, peekEnvelopeHeader, sealEnvelope } from './envelope.js';
import { SyncError } from './protocol.js';

const MAGIC = 'ETHM';

const HeaderSchema = z.object({
  kind: z.enum(['device-head', 'fleet-head']),
  fleet: z.string().min(1),
  /** The device that trained it (device-head) or null (fleet-head). */
  device: z.string().min(1).nullable(),
  /** Device heads: the device's head version. Fleet heads: the fleet version, increasing. */
  version: z.number().int().min(0),
  backboneId: z.string().min(1),
  dim: z.number().int().positive(),
  /** Unique per message: the console de-duplicates by it. */
  id: z.string().min(8),
  createdAt: z.string(),
  headSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type HeadMessageHeader = z.infer<typeof HeaderSchema>;

export function encodeHeadMessage(
  head: Head,
  header: Omit<HeadMessageHeader, 'headSha256' | 'backboneId' | 'dim' | 'createdAt'> & { createdAt?: string },
  key: KeyObject,
): Uint8Array {
  // int8 per row: a quarter of float32 on the wire.
  const headBytes = encodeHead(head, 'int8');
  const full: HeadMessageHeader = HeaderSchema.parse({
    ...header,
    backboneId: head.meta.backboneId,
    dim: head.meta.dim,
    createdAt: header.createdAt ?? new Date().toISOString(),
    headSha256: sha256Hex(headBytes),
  });
  return sealEnvelope(MAGIC, full, headBytes, key);
}

export interface Expectations {
  /** Where the message came from (a topic), for errors. */
  where: string;
  publicKey: KeyObject;
  backboneId: string;
  dim: number;
  /** Refuse versions at or below this one (replay protection). */
  newerThan?: number;
  /** The console's door refuses non-finite numbers itself, naming the device (console/head-gate.ts). */
  allowNonFinite?: boolean;
}

/** Verifies and decodes a head message; every refusal is a SyncError naming `where` and the reason. */
export function decodeHeadMessage(bytes: Uint8Array, expect: Expectations): { header: HeadMessageHeader; head: Head } {
  const fail = (code: ErrorCode, why: string): never => {
    throw new SyncError(code, `${expect.where}: ${why}`);
  };
  const { header: json, payload: headBytes } = openEnvelope(bytes, {
    magic: MAGIC,
    what: 'head message',
    where: expect.where,
    publicKey: expect.publicKey,
    signer: 'the key it must be signed with (fleet key for fleet heads, the pinned device key for device heads)',
  });
  const header = parseWith(HeaderSchema, json, expect.where, SyncError, 'SYNC_MALFORMED');
  if (sha256Hex(headBytes) !== header.headSha256) fail('SYNC_MALFORMED', 'head checksum does not match the header');
  if (header.backboneId !== expect.backboneId || header.dim !== expect.dim) {
    fail(
      'SYNC_BACKBONE_MISMATCH',
      `head is for backbone "${header.backboneId}" (${header.dim}-d), this device runs "${expect.backboneId}" (${expect.dim}-d)`,
    );
  }
  if (expect.newerThan !== undefined && header.version <= expect.newerThan) {
    fail('SYNC_REPLAY', `version ${header.version} is not newer than ${expect.newerThan}: an old or replayed message, refused`);
  }
  try {
    return {
      header,
      head: decodeHead(headBytes, {
        where: expect.where,
        backboneId: expect.backboneId,
        dim: expect.dim,
        allowNonFinite: expect.allowNonFinite ?? false,
      }),
    };
  } catch (err) {
    if (err instanceof HeadError) throw new SyncError('SYNC_MALFORMED', err.message, { cause: err });
    throw err;
  }
}

/** The header of a message this side made and stored itself, without verifying it again. */
export function peekHeadMessageHeader(bytes: Uint8Array, where: string): HeadMessageHeader {
  return parseWith(HeaderSchema, peekEnvelopeHeader(bytes, MAGIC, 'head message', where), where, SyncError, 'SYNC_MALFORMED');
}
