// A maximum MQTT packet size for the embedded broker, enforced before login: aedes' parser buffers a
// whole packet before it looks at it, so one unauthenticated CONNECT declaring 200 MB cost the console
// 150 MB. This reads only the fixed header of every packet (type byte, remaining length varint) as the
// bytes go by and closes the connection as soon as one declares more than the limit.

import { Duplex, Transform, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';

export const MAX_PACKET_BYTES = 2 * 1024 * 1024;

/** The socket as aedes should see it: the same bytes, cut off at the first packet over `maxBytes`. */
export function limitPackets(
  socket: Socket,
  maxBytes: number,
  onOversize: (declared: number) => void,
): Duplex & { remoteAddress: string | undefined } {
  let state: 'type' | 'length' | 'body' = 'type';
  let length = 0;
  let multiplier = 1;
  let left = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      for (let i = 0; i < chunk.length;) {
        if (state === 'type') {
          state = 'length';
          length = 0;
          multiplier = 1;
          i++;
        } else if (state === 'length') {
          const byte = chunk[i++]!;
          length += (byte & 0x7f) * multiplier;
          multiplier *= 128;
          if (length > maxBytes || (byte & 0x80 && multiplier > 128 ** 3)) {
            onOversize(length);
            socket.destroy();
            return callback();
          }
          if (!(byte & 0x80)) {
            left = length;
            state = left === 0 ? 'type' : 'body';
          }
        } else {
          const take = Math.min(left, chunk.length - i);
          left -= take;
          i += take;
          if (left === 0) state = 'type';
        }
      }
      callback(null, chunk);
    },
  });
  socket.pipe(limiter);
  const duplex = Duplex.from({ readable: limiter, writable: socket });
  socket.on('close', () => duplex.destroy());
  socket.on('error', () => duplex.destroy());
  // aedes reads the peer's address from its connection (failed logins back off per address).
  return Object.assign(duplex, { remoteAddress: socket.remoteAddress });
}
