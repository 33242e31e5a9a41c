// The fleet signing key: ed25519 from node:crypto. The console keeps the private key (mode 0600); every
// device is provisioned with the public key and applies only updates signed by it.

import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeDurably } from '../../core/durable.js';
import { SyncError } from './protocol.js';

export interface FleetKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** Loads the fleet key from `path`, or creates it there (0600) on first run. */
export function loadOrCreateFleetKey(path: string): FleetKeys & { created: boolean } {
  if (existsSync(path)) {
    try {
      const privateKey = createPrivateKey(readFileSync(path));
      if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`an ${privateKey.asymmetricKeyType} key, not ed25519`);
      return { privateKey, publicKey: createPublicKey(privateKey), created: false };
    } catch (err) {
      throw new SyncError('SYNC_BAD_KEY', `${path}: not an ed25519 private key: ${(err as Error).message}`);
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  writeDurably(path, new TextEncoder().encode(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()), { mode: 0o600 });
  return { privateKey, publicKey, created: true };
}

export function publicKeyPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

export function readPublicKey(pem: string | Buffer, where: string): KeyObject {
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`an ${key.asymmetricKeyType} key`);
    return key;
  } catch (err) {
    throw new SyncError('SYNC_BAD_KEY', `${where}: not an ed25519 public key: ${(err as Error).message}`);
  }
}

export const SIGNATURE_BYTES = 64;

export function signBytes(data: Uint8Array, key: KeyObject): Uint8Array {
  return new Uint8Array(sign(null, data, key));
}

export function verifyBytes(data: Uint8Array, signature: Uint8Array, key: KeyObject): boolean {
  return signature.length === SIGNATURE_BYTES && verify(null, data, key, signature);
}
