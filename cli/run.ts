// Runs a commander program the way every edgetune command does: exit codes 0/1/2 and one-line errors.
// The laptop's `edgetune` and a device bundle's smaller one (cli/bundle-entry.ts) share it.

import type { Command } from 'commander';
import { escapeStdout, reportError } from './output.js';

export async function runProgram(program: Command, argv: string[]): Promise<number> {
  program.exitOverride();
  escapeStdout();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const commanderCode = (err as { code?: string }).code;
    if (commanderCode?.startsWith('commander.')) {
      const exitCode = (err as { exitCode?: number }).exitCode ?? 2;
      return commanderCode === 'commander.helpDisplayed' || commanderCode === 'commander.version' ? 0 : exitCode;
    }
    return reportError(err, argv.includes('--debug'));
  }
}
