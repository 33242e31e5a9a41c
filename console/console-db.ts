// The console's one SQLite file (registry.db): the device registry (registry.ts) and the devices' broker
// credentials (credentials.ts) live in it side by side, so they share one schema version
// (PRAGMA user_version) and one list of steps (core/sqlite.ts). Append new steps at the end, never edit
// an old one; a step may touch either part. v1 is the schema of the first release.

import type { Schema } from '../core/sqlite.js';

export const CONSOLE_SCHEMA: Schema = {
  name: 'console registry',
  migrations: [
    {
      description: 'devices, device heads, fleet heads, accuracy, problems; per-device broker credentials',
      up: `
      CREATE TABLE IF NOT EXISTS devices (
        id TEXT PRIMARY KEY, online INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
        protocol INTEGER, public_key TEXT, state TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS device_heads (
        id TEXT PRIMARY KEY, device TEXT NOT NULL, version INTEGER NOT NULL, backbone TEXT NOT NULL, dim INTEGER NOT NULL,
        kind TEXT NOT NULL, accuracy REAL, received_at INTEGER NOT NULL, bytes BLOB NOT NULL
      );
      CREATE INDEX IF NOT EXISTS device_heads_by_device ON device_heads (device, version);
      CREATE TABLE IF NOT EXISTS fleet_heads (
        version INTEGER PRIMARY KEY, status TEXT NOT NULL, merged TEXT NOT NULL, held_back TEXT NOT NULL,
        note TEXT, created_at INTEGER NOT NULL, message BLOB NOT NULL
      );
      CREATE TABLE IF NOT EXISTS accuracy (
        device TEXT NOT NULL, at INTEGER NOT NULL, accuracy REAL NOT NULL, head_version INTEGER, fleet_version INTEGER
      );
      CREATE INDEX IF NOT EXISTS accuracy_by_device ON accuracy (device, at);
      CREATE TABLE IF NOT EXISTS problems (
        at INTEGER NOT NULL, device TEXT, topic TEXT NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS credentials (
        device TEXT PRIMARY KEY,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        mosquitto TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
    `,
    },
    {
      description: 'merge verdicts, fleet configuration layers, device tags',
      up: `
      CREATE TABLE IF NOT EXISTS verdicts (
        at INTEGER NOT NULL, trigger TEXT NOT NULL, verdict TEXT NOT NULL, version INTEGER, details TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS config_layers (scope TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS device_tags (device TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (device, tag));
    `,
    },
    {
      description: "credential schemes: fast SHA-256 verifiers beside the first release's scrypt hashes",
      up: "ALTER TABLE credentials ADD COLUMN scheme TEXT NOT NULL DEFAULT 'scrypt';",
    },
    {
      description: "quarantined devices and the operator's class decisions",
      up: `
      CREATE TABLE IF NOT EXISTS quarantine (device TEXT PRIMARY KEY, since INTEGER NOT NULL, reason TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS fleet_classes (label TEXT PRIMARY KEY, decision TEXT NOT NULL, at INTEGER NOT NULL);
    `,
    },
  ],
};
