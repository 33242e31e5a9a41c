// docs/cli.md and the commands cannot drift: every command's --help has an example, every command is
// documented under its own heading, every option a command takes is named in its section (or, for
// the backbone options, in the shared table), and every option a section's heading names exists.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../cli/main.js';
import { allCommands, commandPath } from '../../cli/run.js';
import { REPO_ROOT } from '../support/paths.js';

const docs = readFileSync(join(REPO_ROOT, 'docs/cli.md'), 'utf8');
const program = await buildProgram([]);
const commands = allCommands(program).filter((c) => c.name() !== 'help' && c !== program);
const leaves = commands.filter((c) => c.commands.filter((s) => s.name() !== 'help').length === 0);

function helpOf(command: Command): string {
  let text = '';
  command.configureOutput({ writeOut: (s) => void (text += s) });
  command.outputHelp();
  return text;
}

/** The docs section whose heading names this command: from its `###` line to the next heading. */
function sectionOf(path: string): { heading: string; body: string } | undefined {
  const lines = docs.split('\n');
  const start = lines.findIndex((l) => l.startsWith('### ') && new RegExp(`\`${path}( [^\`]*)?\``).test(l));
  if (start < 0) return undefined;
  const end = lines.findIndex((l, i) => i > start && /^#{1,3} /.test(l));
  return { heading: lines[start]!, body: lines.slice(start, end < 0 ? undefined : end).join('\n') };
}

const backboneTable = docs.slice(docs.indexOf('## Backbone options'), docs.indexOf('## Verbs'));
const longOptions = (command: Command) => command.options.map((o) => o.long!).filter((o) => o && o !== '--help');

describe('edgetune --help and docs/cli.md', () => {
  it('every command, group or verb, has an example in its --help', () => {
    const without = commands.filter((c) => !/\nExamples?:\n/.test(helpOf(c))).map(commandPath);
    expect(without).toEqual([]);
  });

  it('every command has its own section in docs/cli.md', () => {
    expect(leaves.map(commandPath).filter((path) => !sectionOf(path))).toEqual([]);
  });

  it("every option of a command is named in its section, or in the backbone table for the backbone's", () => {
    const missing: string[] = [];
    for (const command of leaves) {
      const section = sectionOf(commandPath(command));
      if (!section) continue;
      for (const option of command.options.filter((o) => o.long && o.long !== '--help')) {
        // Named by its long or its short form (`-o FILE`), not as part of a longer one.
        const forms = [option.long!, option.short].filter((f): f is string => Boolean(f));
        const named = (text: string) => forms.some((f) => new RegExp(`(?<![\\w-])${f}(?![\\w-])`).test(text));
        if (!named(section.body) && !named(backboneTable)) missing.push(`${commandPath(command)} ${option.long}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every option a section heading names is an option of that command', () => {
    const unknown: string[] = [];
    for (const command of leaves) {
      const section = sectionOf(commandPath(command));
      if (!section) continue;
      const own = new Set([...longOptions(command), ...command.options.map((o) => o.short).filter(Boolean)]);
      for (const [flag] of section.heading.matchAll(/(?<![\w-])--?[a-z][\w-]*/g))
        if (!own.has(flag)) unknown.push(`${commandPath(command)} ${flag}`);
    }
    expect(unknown).toEqual([]);
  });
});
