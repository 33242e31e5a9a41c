// Files an operator takes home from the console: any head (a device's, or a fleet version) as the head
// file `edgetune predict --head` reads, and a device's labelled samples as a class-per-folder dataset
// `edgetune eval` reads (fetched from the device in pages over the command channel).

import { ConsoleError } from '../core/errors.js';
import { encodeHead } from '../runtime/head/index.js';
import { decodeHeadMessage, peekHeadMessageHeader } from '../runtime/sync/head-message.js';
import type { FleetKeys } from '../runtime/sync/signing.js';
import { type TarEntry, writeTarGz } from '../deploy/bundle/tar.js';
import type { Registry } from './registry.js';

export interface HeadFile {
  name: string;
  bytes: Buffer;
}

/** A device's stored head (its newest, or `version`). */
export function deviceHeadFile(registry: Registry, device: string, version?: number): HeadFile {
  const row = registry.deviceHead(device, version);
  if (!row)
    throw new ConsoleError(
      'CONSOLE_NO_SUCH_HEAD',
      version === undefined ? `device ${device} has sent no head` : `device ${device} has sent no head v${version}`,
    );
  return { name: `${device}-v${row.version}.head`, bytes: row.bytes };
}

/** A fleet head the console made, as a plain head file (the signed envelope verified and taken off). */
export function fleetHeadFile(registry: Registry, keys: FleetKeys, version: number): HeadFile {
  const row = registry.fleetHead(version);
  if (!row) throw new ConsoleError('CONSOLE_NO_SUCH_HEAD', `there is no fleet head v${version}`);
  const where = `fleet head v${version}`;
  const { backboneId, dim } = peekHeadMessageHeader(row.message, where);
  const { head } = decodeHeadMessage(row.message, { where, publicKey: keys.publicKey, backboneId, dim });
  return { name: `fleet-v${version}.head`, bytes: Buffer.from(encodeHead(head, 'float32')) };
}

export interface SamplePage {
  samples: { id: string; label: string; image: string }[];
  next: number | null;
  labelled: number;
}

/** Every labelled sample of a device, a page (about 1 MB of images) per command. */
export async function* deviceSamples(
  command: (args: Record<string, unknown>) => Promise<Record<string, unknown>>,
): AsyncGenerator<SamplePage['samples'][number]> {
  let offset: number | null = 0;
  while (offset !== null) {
    const page = (await command({ offset, limit: 200, maxBytes: 1024 * 1024 })) as unknown as SamplePage;
    for (const s of page.samples) {
      // A label becomes a folder name: the device is trusted with its photos, not with our paths.
      if (
        typeof s.label !== 'string' ||
        !/^[^/\\\0]{1,64}$/.test(s.label) ||
        s.label === '.' ||
        s.label === '..' ||
        typeof s.image !== 'string'
      )
        throw new ConsoleError(
          'CONSOLE_BAD_SAMPLE',
          `a sample of label ${JSON.stringify(String(s.label).slice(0, 80))} cannot be a dataset folder; export stopped`,
        );
      yield s;
    }
    offset = page.next;
  }
}

/** The file name a sample gets in a dataset folder: its id and the extension its bytes say. */
export function sampleFileName(id: string, image: Buffer): string {
  return `${id.slice(0, 16)}.${imageExtension(image)}`;
}

export function imageExtension(b: Buffer): string {
  if (b[0] === 0xff && b[1] === 0xd8) return 'jpg';
  if (b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  if (b.subarray(0, 2).toString('latin1') === 'BM') return 'bmp';
  if (b.subarray(0, 3).toString('latin1') === 'GIF') return 'gif';
  return 'jpg';
}

/** The dataset as a .tar.gz: <device>/<label>/<id>.<ext>. */
export async function datasetTarGz(
  device: string,
  command: (args: Record<string, unknown>) => Promise<Record<string, unknown>>,
): Promise<{ name: string; bytes: Buffer; samples: number }> {
  const entries: TarEntry[] = [];
  const labels = new Set<string>();
  for await (const s of deviceSamples(command)) {
    const image = Buffer.from(s.image, 'base64');
    labels.add(s.label);
    entries.push({ path: `${device}/${s.label}/${sampleFileName(s.id, image)}`, type: 'file', data: image });
  }
  for (const label of labels) entries.push({ path: `${device}/${label}`, type: 'dir' });
  return { name: `${device}-dataset.tar.gz`, bytes: writeTarGz(entries), samples: entries.length - labels.size };
}
