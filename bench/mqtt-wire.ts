// MQTT's variable-length "remaining length" field, for benches that write packets by hand (a CONNECT
// that declares more than it sends, or one with a chosen client id).

/** The field's bytes: 7 bits a byte, least significant first, the top bit set on all but the last. */
export function remainingLength(n: number): number[] {
  const bytes: number[] = [];
  for (let x = n; ;) {
    const byte = x % 128;
    x = Math.floor(x / 128);
    bytes.push(x > 0 ? byte | 0x80 : byte);
    if (x === 0) return bytes;
  }
}
