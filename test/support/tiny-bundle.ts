// A real agent bundle file (signed manifest, tar) with almost nothing in it, for tests of how the console
// rolls updates out rather than of what the update installs.

import { type BuiltBundle, writeBundle } from '../../deploy/bundle/build.js';

export function tinyBundle(outDir: string, version = '0.2.0'): BuiltBundle {
  return writeBundle(
    {
      target: 'linux-x64',
      version,
      node: { version: process.versions.node, major: Number(process.versions.node.split('.')[0]), abi: process.versions.modules },
      backbone: { id: 'none', file: 'none', sha256: '0'.repeat(64), dim: 8 },
      files: new Map([['edgetune.js', { data: Buffer.from(`console.log('${version}');\n`) }]]),
    },
    outDir,
  );
}
