// Which CPU a native binary is for, from its ELF header, so a bundle for one platform can be proven to
// carry no binary of another (a Pi that loads an x86-64 .node dies with "invalid ELF header").

export type ElfMachine = 'x64' | 'arm64' | 'arm' | `machine-${number}`;

/** e_machine values: x86-64 62, AArch64 183, ARM 40. */
const MACHINES: Record<number, ElfMachine> = { 62: 'x64', 183: 'arm64', 40: 'arm' };

/** The CPU of an ELF file, or undefined for any other file. */
export function elfMachine(bytes: Uint8Array): ElfMachine | undefined {
  if (bytes.length < 20 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) return undefined;
  // EI_DATA (byte 5): 1 little-endian, 2 big-endian; e_machine is the u16 at offset 18.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const machine = view.getUint16(18, bytes[5] === 1);
  return MACHINES[machine] ?? `machine-${machine}`;
}
