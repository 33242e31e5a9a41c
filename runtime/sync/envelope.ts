// The signed envelope of the binary fleet messages (protocol v1): head messages and agent updates.
//
//   magic (4) | protocol u16 | reserved u16 | header length u32 | header JSON | payload | ed25519 signature (64)
//
// All integers little-endian; the signature covers every byte before it.

import type { KeyObject } from 'node:crypto';
import type { ErrorCode } from '../../core/errors.js';
import { PROTOCOL_VERSION, SyncError } from './protocol.js';
import { SIGNATURE_BYTES, signBytes, verifyBytes } from './signing.js';

const PREAMBLE = 12;

export function sealEnvelope(magic: string, header: unknown, payload: Uint8Array, key: KeyObject): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const body = Buffer.alloc(PREAMBLE + json.length + payload.length);
  body.write(magic, 0, 'latin1');
  body.writeUInt16LE(PROTOCOL_VERSION, 4);
  body.writeUInt32LE(json.length, 8);
  json.copy(body, PREAMBLE);
  Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).copy(body, PREAMBLE + json.length);
  return Buffer.concat([body, signBytes(body, key)]);
}

export interface EnvelopeExpectations {
  magic: string;
  /** What the message is, for errors ("head message"). */
  what: string;
  /** Where it came from (a topic), for errors. */
  where: string;
  publicKey: KeyObject;
  /** Whose key that is, for errors ("the fleet key"). */
  signer: string;
}

/** Checks magic, protocol version and signature, in that order; returns the header JSON and the payload.
 * Every refusal is a SyncError naming `where`. */
export function openEnvelope(bytes: Uint8Array, expect: EnvelopeExpectations): { header: unknown; payload: Buffer } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (code: ErrorCode, why: string): never => {
    throw new SyncError(code, `${expect.where}: ${why}`);
  };
  if (buf.length < PREAMBLE + SIGNATURE_BYTES || buf.toString('latin1', 0, 4) !== expect.magic)
    fail('SYNC_MALFORMED', `not an edgetune ${expect.what}`);
  const protocol = buf.readUInt16LE(4);
  if (protocol !== PROTOCOL_VERSION)
    fail('SYNC_PROTOCOL_VERSION', `protocol v${protocol} message; this edgetune speaks v${PROTOCOL_VERSION}`);
  const body = buf.subarray(0, buf.length - SIGNATURE_BYTES);
  if (!verifyBytes(body, buf.subarray(buf.length - SIGNATURE_BYTES), expect.publicKey)) {
    fail('SYNC_BAD_SIGNATURE', `signature does not verify against ${expect.signer}: forged, tampered or truncated; refused`);
  }
  const length = buf.readUInt32LE(8);
  if (PREAMBLE + length > body.length) fail('SYNC_MALFORMED', 'header runs past the end');
  let header: unknown;
  try {
    header = JSON.parse(body.toString('utf8', PREAMBLE, PREAMBLE + length));
  } catch {
    fail('SYNC_MALFORMED', 'header is not JSON');
  }
  return { header, payload: body.subarray(PREAMBLE + length) };
}

/** The header of a message this side made and stored itself, without verifying it again. */
export function peekEnvelopeHeader(bytes: Uint8Array, magic: string, what: string, where: string): unknown {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < PREAMBLE || buf.toString('latin1', 0, 4) !== magic)
    throw new SyncError('SYNC_MALFORMED', `${where}: not an edgetune ${what}`);
  const length = buf.readUInt32LE(8);
  try {
    return JSON.parse(buf.toString('utf8', PREAMBLE, PREAMBLE + length));
  } catch (err) {
    throw new SyncError('SYNC_MALFORMED', `${where}: unreadable header`, { cause: err });
  }
}
