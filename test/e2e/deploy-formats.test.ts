import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { elfMachine } from '../../deploy/bundle/elf.js';
import { writeTarGz } from '../../deploy/bundle/tar.js';
import { parseHost, parseSize, readInventory } from '../../deploy/flash/inventory.js';
import { addKnownKey, fingerprint, keyType, knownKeys } from '../../deploy/flash/known-hosts.js';
import { type AgentUpdate, decodeAgentUpdate, encodeAgentUpdate } from '../../runtime/sync/agent-update.js';
import { loadOrCreateFleetKey } from '../../runtime/sync/signing.js';
import { tempDir } from '../support/paths.js';

// The small formats of deploy/: the signed agent update, the bundle's tar, known_hosts, inventories.
const tmp = tempDir('edgetune-formats-');
afterAll(() => tmp.remove());
const fleetKey = loadOrCreateFleetKey(join(tmp.path, 'fleet.key'));
const otherKey = loadOrCreateFleetKey(join(tmp.path, 'other.key'));

const update: AgentUpdate = {
  kind: 'agent-update',
  fleet: 'farm',
  version: '0.2.0',
  target: 'linux-arm64',
  sha256: 'ab'.repeat(32),
  bytes: 25_655_101,
  chunks: 262,
  devices: ['pi-1'],
  sequence: 1_796_000_000_000,
  createdAt: '2026-11-30T11:00:00.000Z',
};

describe('agent update messages', () => {
  const expect_ = { where: 'edgetune/farm/fleet/agent', publicKey: fleetKey.publicKey, fleet: 'farm' };

  it('round-trips a manifest signed by the fleet key', () => {
    expect(decodeAgentUpdate(encodeAgentUpdate(update, fleetKey.privateKey), expect_)).toEqual(update);
  });

  it('refuses another key, any flipped byte, a truncated message and another fleet, each with its code', () => {
    const good = Buffer.from(encodeAgentUpdate(update, fleetKey.privateKey));
    expect(() => decodeAgentUpdate(encodeAgentUpdate(update, otherKey.privateKey), expect_)).toThrow(
      expect.objectContaining({ code: 'SYNC_BAD_SIGNATURE' }),
    );
    for (let i = 0; i < good.length; i += 7) {
      const bad = Buffer.from(good);
      bad[i] = bad[i]! ^ 0x01;
      expect(() => decodeAgentUpdate(bad, expect_), `byte ${i}`).toThrow(
        expect.objectContaining({ code: expect.stringMatching(/^SYNC_(BAD_SIGNATURE|MALFORMED|PROTOCOL_VERSION)$/) }),
      );
    }
    expect(() => decodeAgentUpdate(good.subarray(0, 40), expect_)).toThrow(expect.objectContaining({ code: 'SYNC_MALFORMED' }));
    expect(() => decodeAgentUpdate(good, { ...expect_, fleet: 'orchard' })).toThrow(
      /an update for fleet "farm", this device is in "orchard"/,
    );
  });
});

describe('bundle tar', () => {
  it('is read by GNU tar with modes, links and long paths, and the same entries in any order give the same bytes', () => {
    const long = `${'node_modules/@img/sharp-libvips-linux-arm64/lib/'.repeat(2)}libvips-cpp.so.8.18.7`;
    const entries = [
      { path: 'b', type: 'dir' as const },
      { path: 'b/run.sh', type: 'file' as const, data: Buffer.from('#!/bin/sh\necho hi\n'), executable: true },
      { path: 'b/data.txt', type: 'file' as const, data: Buffer.from('x'.repeat(1000)) },
      { path: `b/${long}`, type: 'file' as const, data: Buffer.from('lib') },
      { path: 'b/link', type: 'symlink' as const, target: 'data.txt' },
    ];
    const a = writeTarGz(entries);
    expect(writeTarGz([...entries].reverse()).equals(a)).toBe(true);
    const file = join(tmp.path, 'a.tar.gz');
    writeFileSync(file, a);
    const listing = execFileSync('tar', ['-tvzf', file], { encoding: 'utf8' });
    expect(listing).toMatch(/-rwxr-xr-x root\/root\s+18 2020-01-01 \d\d:00 b\/run\.sh/);
    expect(listing).toMatch(/-rw-r--r-- root\/root\s+1000 .* b\/data\.txt/);
    expect(listing).toMatch(/lrwxrwxrwx .* b\/link -> data\.txt/);
    execFileSync('tar', ['-xzf', file, '-C', tmp.path]);
    expect(readFileSync(join(tmp.path, 'b', long), 'utf8')).toBe('lib');
  });

  it("tells an ELF binary's CPU from its header", () => {
    const header = (machine: number) =>
      Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, machine & 0xff, machine >> 8]);
    expect(elfMachine(header(183))).toBe('arm64');
    expect(elfMachine(header(62))).toBe('x64');
    expect(elfMachine(header(40))).toBe('arm');
    expect(elfMachine(readFileSync(process.execPath))).toBe(process.arch === 'arm64' ? 'arm64' : 'x64');
    expect(elfMachine(Buffer.from('#!/bin/sh\n'))).toBeUndefined();
  });
});

describe('known_hosts', () => {
  const key = Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from('ssh-ed25519'), Buffer.from([0, 0, 0, 32]), Buffer.alloc(32, 7)]);

  it('finds plain and hashed entries, port 22 as the bare host and others as [host]:port', () => {
    const file = join(tmp.path, 'known_hosts');
    const salt = Buffer.alloc(20, 1);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[pi.local]:2222').digest('base64')}`;
    writeFileSync(
      file,
      `# a comment\npi-a,192.168.1.20 ssh-ed25519 ${key.toString('base64')}\n${hashed} ssh-ed25519 ${key.toString('base64')}\n`,
    );
    expect(knownKeys(file, '192.168.1.20', 22).map((k) => k.line)).toEqual([2]);
    expect(knownKeys(file, 'pi.local', 2222).map((k) => [k.type, k.line])).toEqual([['ssh-ed25519', 3]]);
    expect(knownKeys(file, 'pi.local', 22)).toEqual([]);
    addKnownKey(file, '10.0.0.9', 2200, key);
    expect(knownKeys(file, '10.0.0.9', 2200)[0]!.key.equals(key)).toBe(true);
    expect(keyType(key)).toBe('ssh-ed25519');
    expect(fingerprint(key)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

describe('inventory', () => {
  it('reads hosts with their settings and reports each malformed line by file and line, and a second use of a device id', () => {
    const file = join(tmp.path, 'fleet.txt');
    writeFileSync(
      file,
      [
        '# greenhouse',
        'pi@192.168.1.21 id=gh-01',
        '192.168.1.22:2222 id=gh-02 http_port=9000 min_free=1.5G service=process   # spare',
        'pi@ id=x',
        'pi@192.168.1.23 colour=red',
        'pi@192.168.1.24 id=gh-01',
        '',
      ].join('\n'),
    );
    const { hosts, errors } = readInventory(file, { username: 'pi' });
    expect(hosts.map((h) => [h.name, h.username, h.host, h.port, h.id])).toEqual([
      ['pi@192.168.1.21', 'pi', '192.168.1.21', 22, 'gh-01'],
      ['192.168.1.22:2222', 'pi', '192.168.1.22', 2222, 'gh-02'],
    ]);
    expect(hosts[1]).toMatchObject({ httpPort: 9000, minFreeBytes: 1.5 * 2 ** 30, service: 'process' });
    expect(errors.map((e) => e.error.message)).toEqual([
      `${file}:4: "pi@" is not [user@]host[:port]`,
      `${file}:5: "colour=red" is not key=value with a key of id, root, http_port, min_free, service, sudo, password, identity`,
      // The first line keeps the id; the second would share its MQTT login.
      `${file}: device id "gh-01" is used by pi@192.168.1.21 and pi@192.168.1.24`,
    ]);
    expect(parseHost('admin@[::1]:2022', { username: 'pi' })).toMatchObject({ username: 'admin', host: '::1', port: 2022, id: '--1-2022' });
    expect(parseSize('500M')).toBe(500 * 2 ** 20);
    expect(() => parseSize('lots')).toThrow(/not a size/);
  });
});
