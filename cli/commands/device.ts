// `edgetune device info`: which board this is and what the agent will pick for it.

import type { Command } from 'commander';
import { detectDevice } from '../../devices/detect.js';
import { formatTable, printJson } from '../output.js';

export function registerDevice(program: Command): void {
  const device = program
    .command('device')
    .description('device profile: detected hardware and the settings the agent uses')
    .addHelpText('after', '\nExample:\n  edgetune device info');
  device
    .command('info')
    .description('print the detected board, its facts and the profile the agent will use')
    .option('--root <dir>', 'read /proc and /etc under this folder instead of / (for testing)', '/')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  edgetune device info --json')
    .action((flags: { root: string; json?: boolean }) => {
      const { profile, facts, reason } = detectDevice(flags.root);
      if (flags.json) return printJson({ profile, facts, reason });
      const rows: [string, string][] = [
        ['profile', `${profile.id} (${profile.name})`],
        ['detected from', reason],
        ['cpu', `${facts.cpuModel ?? 'unknown'}, ${facts.cores} cores, ${facts.arch}`],
        ['memory', facts.memoryMiB === null ? 'unknown' : `${facts.memoryMiB} MiB`],
        ['engine', profile.engine],
        ['workers x threads', `${profile.workers} x ${profile.threads}`],
        ['batch size', String(profile.batchSize)],
        ['queue limit', String(profile.queueLimit)],
        ['max image', `${(profile.maxImagePixels / 1e6).toFixed(0)} megapixels`],
        ['retention', `${profile.retention.maxSamples} samples, ${(profile.retention.maxBytes / 2 ** 30).toFixed(0)} GiB`],
        ['why', profile.why],
      ];
      process.stdout.write(`${formatTable(['', ''], rows)}\n`);
    });
}
