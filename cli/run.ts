// Runs a commander program the way every edgetune command does: exit codes 0 (done), 1 (an error in
// the data), 2 (a usage error); errors as one line, a usage error with the nearest correct name and a
// short usage line instead of the whole help. The laptop's `edgetune` and a device bundle's smaller one
// (cli/bundle-entry.ts) share it.

import { type Command, CommanderError } from 'commander';
import { UsageError, escapeStdout, printable, reportError } from './output.js';

/** Every command of the program, the program first. */
export function allCommands(program: Command): Command[] {
  return [program, ...program.commands.flatMap((c) => allCommands(c))];
}

/** "edgetune console devices": a command's name with its parents'. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The command argv runs (following sub-command names), and the arguments after its name. */
function targetOf(program: Command, argv: string[]): { command: Command; rest: string[] } {
  let command = program;
  const args = argv.slice(2);
  let after = 0;
  for (let at = 0; at < args.length; at++) {
    const arg = args[at]!;
    if (arg.startsWith('-')) continue;
    const sub = command.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
    if (!sub) break;
    command = sub;
    after = at + 1;
  }
  return { command, rest: args.slice(after) };
}

/** An option argv gives `command` that neither it nor its parents know, if any. */
function unknownOption(command: Command, rest: string[]): string | undefined {
  const known = new Set<string>();
  for (let c: Command | null = command; c; c = c.parent)
    for (const o of c.options) for (const flag of [o.long, o.short]) if (flag) known.add(flag);
  known.add('--help').add('-h');
  return rest.map((arg) => arg.split('=')[0]!).find((arg) => arg.startsWith('-') && arg !== '-' && arg !== '--' && !known.has(arg));
}

/** "edgetune train --data <dir> [options]": the required options spelled out, the rest as [options]. */
function shortUsage(command: Command): string {
  const path = commandPath(command);
  const required = command.options.filter((o) => o.mandatory).map((o) => o.flags.split(/,\s*/).pop()!);
  return `usage: ${[path, ...required, command.usage()].join(' ')}\nsee '${path} --help' for the options and an example`;
}

/** The sub-command a group runs when none is named (`console` runs `console start`), if it has one. */
function defaultSubcommand(group: Command): Command | undefined {
  const name = (group as unknown as { _defaultCommandName: string | null })._defaultCommandName;
  return name === null ? undefined : group.commands.find((c) => c.name() === name);
}

export async function runProgram(program: Command, argv: string[]): Promise<number> {
  escapeStdout();
  let commanderOutput = '';
  for (const command of allCommands(program)) {
    command.exitOverride();
    command.showHelpAfterError(false);
    // Commander's own error lines are replaced by ours; help asked for still goes to stdout.
    command.configureOutput({ writeErr: (text) => void (commanderOutput += text) });
  }
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    const debug = argv.includes('--debug');
    if (err instanceof UsageError && !debug) {
      // A usage error a command found itself (a value out of range, options that need each other).
      process.stderr.write(`edgetune: ${printable(err.message)}\n${shortUsage(targetOf(program, argv).command)}\n`);
      return 2;
    }
    if (!(err instanceof CommanderError)) return reportError(err, debug);
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    const { command, rest } = targetOf(program, argv);
    if (err.code === 'commander.help') {
      // Bare `edgetune`: the whole help. A group without its verb (`edgetune model`): what is missing.
      if (command === program) process.stderr.write(commanderOutput);
      else {
        const verbs = command.commands.map((c) => c.name()).join(', ');
        process.stderr.write(`edgetune: '${commandPath(command)}' needs a command: ${verbs}\n${shortUsage(command)}\n`);
      }
      return 2;
    }
    let message = err.message;
    // Commander checks required options before unknown ones: `train --dta x` should name --dta.
    const unknown = err.code === 'commander.missingMandatoryOptionValue' ? unknownOption(command, rest) : undefined;
    // `console devcies`: the group's default sub-command (console start) was given the typo as an argument.
    const fallback = err.code === 'commander.excessArguments' ? defaultSubcommand(command) : undefined;
    if (fallback?.args[0] !== undefined) {
      try {
        (command as unknown as { args: string[] }).args = [fallback.args[0]];
        (command as unknown as { unknownCommand(): never }).unknownCommand();
      } catch (named) {
        message = `${(named as Error).message.replace(/'(\n|$)/, `' for '${commandPath(command)}'$1`)}`;
      }
    } else if (unknown) {
      try {
        // Commander's own message, with its "did you mean" suggestion.
        (command as unknown as { unknownOption(flag: string): never }).unknownOption(unknown);
      } catch (named) {
        message = (named as Error).message;
      }
    }
    process.stderr.write(`edgetune: ${message.replace(/^error: /, '').replace(/\n\(Did you mean (.+)\?\)/, ' (did you mean $1?)')}\n`);
    process.stderr.write(`${shortUsage(command)}\n`);
    return 2;
  }
}
