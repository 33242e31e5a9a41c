// Splits a stream of concatenated JPEG images (MJPEG, as `rpicam-vid --codec mjpeg -o -` or
// `ffmpeg -f v4l2 -i /dev/video0 -f mjpeg -` write it) into frames. It walks the marker segments rather
// than searching for FF D9, so an EXIF thumbnail inside a frame does not end the frame early. Bytes
// between frames are skipped; a frame larger than the limit is still walked to its end, but not kept.

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;

type State = 'seek-soi' | 'marker' | 'entropy';

export class JpegStreamSplitter {
  private buffer: Buffer = Buffer.alloc(0);
  /** Where parsing resumes in `buffer`. */
  private pos = 0;
  /** Start of the current frame in `buffer` (valid outside seek-soi). */
  private frameStart = 0;
  private state: State = 'seek-soi';
  /** The current frame is over the limit: walk it to its EOI without keeping its bytes. */
  private discarding = false;
  /** Frames dropped for exceeding `maxBytes`. */
  oversized = 0;

  constructor(private readonly maxBytes: number) {}

  push(chunk: Buffer): Buffer[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Buffer[] = [];
    for (;;) {
      const frame = this.step();
      if (frame === undefined) break;
      if (frame !== null) frames.push(frame);
    }
    this.compact();
    return frames;
  }

  /** Advances as far as the buffered bytes allow: a frame, null (progress, no frame) or undefined (need more). */
  private step(): Buffer | null | undefined {
    const b = this.buffer;
    if (this.state === 'seek-soi') {
      const at = b.indexOf(Buffer.from([0xff, SOI]), this.pos);
      if (at < 0) {
        this.pos = Math.max(this.pos, b.length - 1);
        return undefined;
      }
      this.frameStart = at;
      this.pos = at + 2;
      this.state = 'marker';
      this.discarding = false;
      return null;
    }
    if (!this.discarding && this.pos - this.frameStart > this.maxBytes) this.discarding = true;
    if (this.state === 'entropy') {
      // Entropy-coded data: FF 00 is a stuffed byte and FF D0-D7 a restart marker; any other FF xx is a marker.
      for (let i = this.pos; i + 1 < b.length; i++) {
        if (b[i] !== 0xff) continue;
        const next = b[i + 1]!;
        if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) continue;
        this.pos = i;
        this.state = 'marker';
        return null;
      }
      this.pos = Math.max(this.pos, b.length - 1);
      return undefined;
    }
    // At a marker: FF xx [length].
    if (this.pos + 2 > b.length) return undefined;
    if (b[this.pos] !== 0xff) {
      // Not a JPEG after all: look for the next frame.
      this.state = 'seek-soi';
      return null;
    }
    const marker = b[this.pos + 1]!;
    if (marker === 0xff) {
      this.pos++; // fill byte
      return null;
    }
    if (marker === EOI) {
      const end = this.pos + 2;
      this.pos = end;
      this.state = 'seek-soi';
      if (this.discarding || end - this.frameStart > this.maxBytes) {
        this.oversized++;
        return null;
      }
      return Buffer.from(b.subarray(this.frameStart, end));
    }
    if (marker === SOI || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      this.pos += 2; // markers without a length
      return null;
    }
    if (this.pos + 4 > b.length) return undefined;
    const length = b.readUInt16BE(this.pos + 2);
    if (this.pos + 2 + length > b.length) return undefined; // a segment is at most 64 KB
    this.pos += 2 + length;
    if (marker === SOS) this.state = 'entropy';
    return null;
  }

  /** Drops bytes nothing will look at again. */
  private compact(): void {
    const keepFrom = this.state === 'seek-soi' || this.discarding ? this.pos : this.frameStart;
    if (keepFrom === 0) return;
    this.buffer = this.buffer.subarray(keepFrom);
    this.pos -= keepFrom;
    this.frameStart = Math.max(0, this.frameStart - keepFrom);
  }
}
