// The inbox reads only the inbox: a file swapped for a link, another file or a FIFO between listing and
// reading is not read, and an oversized file is refused before it is read.

import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InboxSource, readListedFile } from '../../devices/sources/inbox.js';
import { tempDir } from '../support/paths.js';

const tmp = tempDir();
afterAll(() => tmp.remove());
let n = 0;

function setup() {
  const root = join(tmp.path, `case${n++}`);
  const inbox = join(root, 'inbox');
  mkdirSync(join(inbox, 'daisy'), { recursive: true });
  const secret = join(root, 'private.jpg');
  writeFileSync(secret, 'PRIVATE PHOTO BYTES');
  return { inbox, secret };
}

describe('reading a listed inbox file', () => {
  it('refuses a file swapped for a symbolic link of the same size after it was listed', async () => {
    const { inbox, secret } = setup();
    const path = join(inbox, 'daisy', 'a.jpg');
    writeFileSync(path, 'innocent photo bytes'.slice(0, 19));
    const listed = lstatSync(path);
    rmSync(path);
    symlinkSync(secret, path);
    await expect(readListedFile(path, listed, 1 << 20)).rejects.toThrow(/became a symbolic link: not read/);
    expect(readFileSync(secret, 'utf8')).toBe('PRIVATE PHOTO BYTES');
  });

  it('refuses another file renamed over the listed one, a FIFO, and a file over the size limit', async () => {
    const { inbox } = setup();
    const path = join(inbox, 'b.jpg');
    writeFileSync(path, 'first');
    const listed = lstatSync(path);
    writeFileSync(join(inbox, '.other'), 'other');
    renameSync(join(inbox, '.other'), path);
    await expect(readListedFile(path, listed, 1 << 20)).rejects.toThrow(/replaced after it was listed/);
    const fifo = join(inbox, 'c.jpg');
    execFileSync('mkfifo', [fifo]);
    await expect(readListedFile(fifo, lstatSync(fifo), 1 << 20)).rejects.toThrow(/not a regular file/);
    const big = join(inbox, 'd.jpg');
    writeFileSync(big, '');
    truncateSync(big, 600 * 1024 * 1024); // sparse: no disk, and never read
    const before = process.memoryUsage().rss;
    await expect(readListedFile(big, lstatSync(big), 20 * 1024 * 1024)).rejects.toThrow(
      /629145600 bytes, over the inbox limit of 20971520/,
    );
    expect(process.memoryUsage().rss - before).toBeLessThan(50 * 1024 * 1024);
  });
});

describe('the inbox source', () => {
  it('never reads a link put in the inbox, and moves an oversized file to rejected/ with the reason', async () => {
    const { inbox, secret } = setup();
    symlinkSync(secret, join(inbox, 'daisy', 'link.jpg'));
    writeFileSync(join(inbox, 'huge.jpg'), '');
    truncateSync(join(inbox, 'huge.jpg'), 600 * 1024 * 1024);
    writeFileSync(join(inbox, 'daisy', 'ok.jpg'), 'a real photo would be here');
    const received: { bytes: string; label: string | null }[] = [];
    const source = new InboxSource({ dir: inbox, after: 'move', pollMs: 10, maxBytes: 1024 });
    const sink = async (s: { bytes: Buffer; label: string | null }) => {
      received.push({ bytes: s.bytes.toString(), label: s.label });
      return 'id';
    };
    await source.scan(sink); // sizes noted
    await source.scan(sink); // stable: taken
    expect(received).toEqual([{ bytes: 'a real photo would be here', label: 'daisy' }]);
    expect(readdirSync(join(inbox, 'rejected')).sort()).toEqual(['huge.jpg', 'huge.jpg.error.txt']);
    expect(readFileSync(join(inbox, 'rejected', 'huge.jpg.error.txt'), 'utf8')).toMatch(/over the inbox limit of 1024: not read/);
    expect(readdirSync(join(inbox, 'done'))).toEqual(['daisy__ok.jpg']);
    // The link stays where it was, unread; the private file is untouched.
    expect(lstatSync(join(inbox, 'daisy', 'link.jpg')).isSymbolicLink()).toBe(true);
    expect(readFileSync(secret, 'utf8')).toBe('PRIVATE PHOTO BYTES');
  });
});
