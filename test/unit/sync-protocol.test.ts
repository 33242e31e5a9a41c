import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeHead, trainHead } from '../../runtime/head/index.js';
import { seededRandom } from '../../core/random.js';
import { ChunkAssembler, splitIntoChunks } from '../../runtime/sync/chunks.js';
import { decodeHeadMessage, encodeHeadMessage } from '../../runtime/sync/head-message.js';
import { devicePublishAllowed, parseTopic, topics } from '../../runtime/sync/protocol.js';
import { loadOrCreateFleetKey, publicKeyPem, readPublicKey } from '../../runtime/sync/signing.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
const BACKBONE = 'mobilenet_v1_1.0_224_quant_embedding_extractor';

function smallHead() {
  const dim = 1024;
  const random = seededRandom(3);
  const x = Float32Array.from({ length: 40 * dim }, () => random());
  const y = Int32Array.from({ length: 40 }, (_, i) => i % 2);
  for (let i = 0; i < 40; i++) x[i * dim] = x[i * dim]! + y[i]! * 3; // separable on the first feature
  return trainHead('softmax', x, y, { backboneId: BACKBONE, dim, labels: ['ok', 'defect'] }).head;
}

describe('fleet signing key', () => {
  it('is created once with mode 0600 and loads again as the same key', () => {
    const path = join(tmp.path, 'console', 'fleet.key');
    const first = loadOrCreateFleetKey(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = loadOrCreateFleetKey(path);
    expect(again.created).toBe(false);
    expect(publicKeyPem(again.publicKey)).toBe(publicKeyPem(first.publicKey));
    expect(readFileSync(path, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('refuses a key file that is not ed25519, by name', () => {
    const path = join(tmp.path, 'not-a-key.pem');
    writeFileSync(path, 'hello');
    expect(() => loadOrCreateFleetKey(path)).toThrow(/not-a-key\.pem: not an ed25519 private key/);
    expect(() => readPublicKey('nope', 'fleet.pub')).toThrow(/fleet\.pub: not an ed25519 public key/);
  });
});

describe('signed head messages', () => {
  const fleet = loadOrCreateFleetKey(join(tmp.path, 'fleet.key'));
  const other = loadOrCreateFleetKey(join(tmp.path, 'attacker.key'));
  const head = smallHead();
  const message = encodeHeadMessage(
    head,
    { kind: 'fleet-head', fleet: 'farm', device: null, version: 7, id: 'fleet-head-000007' },
    fleet.privateKey,
  );
  const expect_ = { where: 'edgetune/farm/fleet/head', publicKey: fleet.publicKey, backboneId: BACKBONE, dim: 1024 };

  it('round-trips: int8 weights, the same predictions', () => {
    const { header, head: decoded } = decodeHeadMessage(message, { ...expect_, newerThan: 6 });
    expect(header).toMatchObject({ kind: 'fleet-head', fleet: 'farm', version: 7, backboneId: BACKBONE, dim: 1024 });
    const probe = Float32Array.from({ length: 1024 }, (_, i) => (i === 0 ? 3.5 : 0.5));
    expect(decoded.predict(probe).label).toBe(head.predict(probe).label);
    // int8 per row: well under half of the float32 head file, signature and header included.
    expect(message.length).toBeLessThan(encodeHead(head, 'float32').length / 2);
  });

  it('refuses a forged, a tampered, a replayed and a wrong-backbone message, each by reason', () => {
    const forged = encodeHeadMessage(
      head,
      { kind: 'fleet-head', fleet: 'farm', device: null, version: 99, id: 'forged-00000099' },
      other.privateKey,
    );
    expect(() => decodeHeadMessage(forged, expect_)).toThrow(expect.objectContaining({ code: 'SYNC_BAD_SIGNATURE' }));
    const tampered = Uint8Array.from(message);
    tampered[tampered.length - 100]! ^= 0x01;
    expect(() => decodeHeadMessage(tampered, expect_)).toThrow(/edgetune\/farm\/fleet\/head: signature does not verify/);
    expect(() => decodeHeadMessage(message, { ...expect_, newerThan: 7 })).toThrow(expect.objectContaining({ code: 'SYNC_REPLAY' }));
    expect(() =>
      decodeHeadMessage(message, { ...expect_, backboneId: 'mobilenet_v2_1.0_224_quant-cut-MobilenetV2_Logits_AvgPool', dim: 1280 }),
    ).toThrow(/head is for backbone "mobilenet_v1_1\.0_224_quant_embedding_extractor" \(1024-d\), this device runs "mobilenet_v2/);
    const v2 = Uint8Array.from(message);
    v2[4] = 2;
    expect(() => decodeHeadMessage(v2, expect_)).toThrow(/protocol v2 message; this edgetune speaks v1/);
    expect(() => decodeHeadMessage(new TextEncoder().encode('{"hello":1}'), expect_)).toThrow(/not an edgetune head message/);
  });
});

describe('chunked blobs', () => {
  it('reassembles a file from chunks in any order, ignoring duplicates, and checks its sha256', () => {
    const file = randomBytes(300_000);
    const chunks = splitIntoChunks(file, 128 * 1024);
    expect(chunks).toHaveLength(3);
    expect(chunks.every((c) => c.payload.length <= 128 * 1024)).toBe(true);
    const assembler = new ChunkAssembler();
    expect(assembler.add(chunks[2]!.payload, 'blob 2')).toBeUndefined();
    expect(assembler.add(chunks[0]!.payload, 'blob 0')).toBeUndefined();
    expect(assembler.add(chunks[0]!.payload, 'blob 0 again')).toBeUndefined();
    const done = assembler.add(chunks[1]!.payload, 'blob 1');
    expect(Buffer.from(done!.bytes).equals(file)).toBe(true);
    expect(done!.sha256).toBe(chunks[0]!.sha256);
    expect(assembler.pendingFiles).toBe(0);
  });

  it('refuses a corrupted chunk at reassembly, and bounds what it holds', () => {
    const chunks = splitIntoChunks(randomBytes(10_000), 4096);
    const bad = Uint8Array.from(chunks[1]!.payload);
    bad[bad.length - 1]! ^= 0xff;
    const assembler = new ChunkAssembler();
    assembler.add(chunks[0]!.payload, 'c0');
    assembler.add(bad, 'c1');
    expect(() => assembler.add(chunks[2]!.payload, 'c2')).toThrow(/c2: reassembled file has sha256 [0-9a-f]{64}, expected/);
    const small = new ChunkAssembler({ maxFileBytes: 5000, maxPendingFiles: 1, staleMs: 1000 });
    small.add(chunks[0]!.payload, 'a', 0);
    expect(() => small.add(splitIntoChunks(randomBytes(9000), 4096)[0]!.payload, 'b', 10)).toThrow(/1 files are already being received/);
    expect(small.add(splitIntoChunks(randomBytes(9000), 4096)[0]!.payload, 'b', 5000)).toBeUndefined(); // the stale one was dropped
    expect(() => small.add(new TextEncoder().encode('junk'), 'topic x')).toThrow(/topic x: not an edgetune chunk/);
  });
});

describe('topics and ACLs', () => {
  it('builds and parses v1 topics, and refuses ids that would escape their level', () => {
    expect(topics.device('farm', 'pi-07', 'head')).toBe('edgetune/farm/device/pi-07/head');
    expect(parseTopic('edgetune/farm/device/pi-07/cmd/response')).toEqual({
      kind: 'device',
      fleet: 'farm',
      device: 'pi-07',
      channel: 'cmd/response',
    });
    expect(parseTopic(topics.blob('farm', 'a'.repeat(64), 3))).toEqual({ kind: 'blob', fleet: 'farm', sha256: 'a'.repeat(64), index: 3 });
    expect(() => topics.device('farm', 'pi/+', 'head')).toThrow(/device id "pi\/\+" must be/);
    expect(() => parseTopic('edgetune/farm/device/pi-07/secrets')).toThrow(/not an edgetune v1 topic/);
  });

  it('lets a device publish only under its own device topics, never commands', () => {
    expect(devicePublishAllowed('farm', 'pi-a', 'edgetune/farm/device/pi-a/head')).toBe(true);
    expect(devicePublishAllowed('farm', 'pi-a', 'edgetune/farm/device/pi-b/head')).toBe(false);
    expect(devicePublishAllowed('farm', 'pi-a', 'edgetune/farm/device/pi-a/cmd')).toBe(false);
    expect(devicePublishAllowed('farm', 'pi-a', 'edgetune/farm/fleet/head')).toBe(false);
    expect(devicePublishAllowed('farm', 'pi-a', 'edgetune/other/device/pi-a/head')).toBe(false);
    expect(devicePublishAllowed('farm', 'pi-a', 'edgetune/farm/device/+/head')).toBe(false);
  });
});
