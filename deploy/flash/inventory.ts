// Which devices to flash: hosts on the command line, or an inventory file with one device a line.
//
//   # comments and blank lines are skipped
//   pi@192.168.1.21            id=greenhouse-01
//   pi@192.168.1.22:2222       id=greenhouse-02 http_port=8080 root=/ min_free=500M
//
// Keys: id (device id; default from the host), root (install prefix), http_port, min_free (bytes, or
// with K/M/G/T), service (systemd|process), sudo (auto|yes|no), password, identity (private key file). A malformed line is
// one failed entry in the result naming the file and line; the other lines still deploy.

import { readFileSync } from 'node:fs';
import { DeployError } from '../../core/errors.js';
import { checkId } from '../../runtime/sync/protocol.js';

export interface HostEntry {
  /** As written: user@host:port. */
  name: string;
  host: string;
  port: number;
  username: string;
  id: string;
  root?: string;
  httpPort?: number;
  minFreeBytes?: number;
  service?: 'systemd' | 'process';
  password?: string;
  identityFile?: string;
  sudo?: 'auto' | 'yes' | 'no';
}

export interface InventoryError {
  name: string;
  error: DeployError;
}

const HOST = /^(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/;
const KEYS = new Set(['id', 'root', 'http_port', 'min_free', 'service', 'sudo', 'password', 'identity']);

export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)B?$/i.exec(text);
  if (!m) throw new Error(`"${text}" is not a size (like 500M or 2G)`);
  return Math.round(Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()));
}

/** One host: "[user@]host[:port] key=value...". Throws a message without the location. */
export function parseHost(text: string, defaults: { username: string }): HostEntry {
  const [spec = '', ...pairs] = text.trim().split(/\s+/);
  const m = HOST.exec(spec);
  if (!m) throw new Error(`"${spec}" is not [user@]host[:port]`);
  const host = m[2]!.replace(/^\[|\]$/g, '');
  const port = m[3] ? Number(m[3]) : 22;
  if (port < 1 || port > 65535) throw new Error(`port ${port} is out of range`);
  const entry: HostEntry = {
    name: spec,
    host,
    port,
    username: m[1] ?? defaults.username,
    id: (port === 22 ? host : `${host}-${port}`).replace(/[^A-Za-z0-9._-]/g, '-'),
  };
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : pair;
    const value = pair.slice(eq + 1);
    if (eq <= 0 || !KEYS.has(key)) throw new Error(`"${pair}" is not key=value with a key of ${[...KEYS].join(', ')}`);
    if (key === 'id') entry.id = value;
    else if (key === 'root') entry.root = value;
    else if (key === 'http_port') {
      entry.httpPort = Number(value);
      if (!Number.isInteger(entry.httpPort) || entry.httpPort < 1 || entry.httpPort > 65535)
        throw new Error(`http_port "${value}" is not a port`);
    } else if (key === 'min_free') entry.minFreeBytes = parseSize(value);
    else if (key === 'service') {
      if (value !== 'systemd' && value !== 'process') throw new Error(`service "${value}" is not systemd or process`);
      entry.service = value;
    } else if (key === 'sudo') {
      if (value !== 'auto' && value !== 'yes' && value !== 'no') throw new Error(`sudo "${value}" is not auto, yes or no`);
      entry.sudo = value;
    } else if (key === 'password') entry.password = value;
    else entry.identityFile = value;
  }
  try {
    checkId('device', entry.id);
  } catch (err) {
    throw new Error((err as Error).message);
  }
  return entry;
}

export function readInventory(file: string, defaults: { username: string }): { hosts: HostEntry[]; errors: InventoryError[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DeployError('INVENTORY_UNREADABLE', `${file}: ${(err as Error).message}`);
  }
  const hosts: HostEntry[] = [];
  const errors: InventoryError[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (!line) return;
    try {
      hosts.push(parseHost(line, defaults));
    } catch (err) {
      errors.push({
        name: `${file}:${i + 1}`,
        error: new DeployError('INVENTORY_BAD_LINE', `${file}:${i + 1}: ${(err as Error).message}`),
      });
    }
  });
  const seen = new Map<string, string>();
  for (const h of hosts) {
    const other = seen.get(h.id);
    if (other)
      errors.push({
        name: h.name,
        error: new DeployError('INVENTORY_BAD_LINE', `${file}: device id "${h.id}" is used by ${other} and ${h.name}`),
      });
    seen.set(h.id, h.name);
  }
  return { hosts: hosts.filter((h) => !errors.some((e) => e.name === h.name)), errors };
}
