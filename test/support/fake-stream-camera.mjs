#!/usr/bin/env node
// A stand-in for `rpicam-vid --codec mjpeg -o -`: writes the JPEG photos of a folder to stdout back to
// back, forever (or FRAMES times), each with a COM segment carrying its frame number so every frame is
// new content. FPS limits the rate (0: as fast as stdout drains). EXIT_AFTER=n ends the stream after n
// frames with an error, the way a camera cable coming loose does.
// usage: fake-stream-camera.mjs PHOTO_DIR
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
const photos = readdirSync(dir)
  .filter((f) => /\.jpe?g$/i.test(f))
  .sort()
  .map((f) => readFileSync(join(dir, f)));
const fps = Number(process.env.FPS ?? 0);
const frames = Number(process.env.FRAMES ?? Infinity);
const exitAfter = Number(process.env.EXIT_AFTER ?? Infinity);

function frame(n) {
  const photo = photos[n % photos.length];
  const text = Buffer.from(`frame ${n}`);
  const com = Buffer.alloc(4 + text.length);
  com.writeUInt16BE(0xfffe, 0);
  com.writeUInt16BE(2 + text.length, 2);
  text.copy(com, 4);
  return Buffer.concat([photo.subarray(0, 2), com, photo.subarray(2)]);
}

let n = 0;
const next = () => {
  if (n >= exitAfter) {
    process.stderr.write('ERROR: camera frontend has timed out!\n');
    process.exit(1);
  }
  if (n >= frames) return;
  const ok = process.stdout.write(frame(n++));
  if (fps > 0) setTimeout(next, 1000 / fps);
  else if (ok) setImmediate(next);
  else process.stdout.once('drain', next);
};
process.stdout.on('error', () => process.exit(0));
next();
