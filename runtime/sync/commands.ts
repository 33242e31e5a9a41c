// Commands from the console to one device, and the device's replies (protocol v1, docs/protocol.md).
//
// A command is JSON on edgetune/{fleet}/device/{id}/cmd. Over MQTT 5 its reply topic and correlation
// id also travel as the response-topic and correlation-data properties; the JSON carries them too
// (`replyTo`, `id`), which is all an MQTT 3.1.1 broker such as the embedded aedes can pass on. Only
// the console may publish to a device's cmd topic (the broker's ACL); a head inside a command is
// still checked against the fleet key like any fleet head.

import { z } from 'zod';
import { parseWith } from '../../core/schema.js';
import { PROTOCOL_VERSION, SyncError } from './protocol.js';

export const COMMANDS = ['apply-head', 'rollback-fleet', 'train', 'config', 'state', 'logs', 'samples'] as const;
export type CommandName = (typeof COMMANDS)[number];

export const CommandSchema = z.object({
  protocol: z.number().int(),
  /** Correlation id: the reply carries it back. */
  id: z.string().min(1).max(128),
  cmd: z.string().min(1).max(64),
  args: z.record(z.string(), z.unknown()).default({}),
  replyTo: z.string().min(1).max(512).optional(),
});
export type Command = z.infer<typeof CommandSchema>;

export const ResponseSchema = z.object({
  protocol: z.number().int(),
  id: z.string().min(1).max(128),
  device: z.string(),
  ok: z.boolean(),
  result: z.record(z.string(), z.unknown()).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type CommandResponse = z.infer<typeof ResponseSchema>;

/** Parses a JSON message of a schema; anything else is SYNC_MALFORMED naming `where`. */
export function parseJsonMessage<T extends z.ZodType>(schema: T, payload: Uint8Array, where: string, maxBytes = 256 * 1024): z.infer<T> {
  if (payload.length > maxBytes)
    throw new SyncError('SYNC_MALFORMED', `${where}: ${payload.length} bytes, more than the ${maxBytes} a message may have`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new SyncError('SYNC_MALFORMED', `${where}: not JSON`);
  }
  return parseWith(schema, json, where, SyncError, 'SYNC_MALFORMED');
}

/** A command this side can act on: known name, same protocol version (else a clear refusal). */
export function checkCommand(command: Command, where: string): CommandName {
  if (command.protocol !== PROTOCOL_VERSION) {
    throw new SyncError(
      'SYNC_PROTOCOL_VERSION',
      `${where}: a protocol v${command.protocol} command; this device speaks v${PROTOCOL_VERSION}`,
    );
  }
  if (!(COMMANDS as readonly string[]).includes(command.cmd))
    throw new SyncError('SYNC_UNKNOWN_COMMAND', `${where}: unknown command "${command.cmd.slice(0, 64)}"`);
  return command.cmd as CommandName;
}
