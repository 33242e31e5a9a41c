// The `edgetune` command: one verb per job, each with its own --help.

import { Command } from 'commander';
import { runProgram } from './run.js';

type Register = (program: Command) => void;

/** Each verb's module, loaded only when that verb runs (or for the full help): `edgetune device info`
 * must not load the importer, onnx-proto, the console or ssh2 to read /proc. Order is the help's order. */
const COMMANDS: [name: string, load: () => Promise<Register[]>][] = [
  ['models', async () => [(await import('./commands/models.js')).registerModels]],
  ['model', async () => [(await import('./commands/model.js')).registerModel]],
  ['quantize', async () => [(await import('./commands/model.js')).registerQuantize]],
  ['embed', async () => [(await import('./commands/embed.js')).registerEmbed]],
  ['train', async () => [(await import('./commands/train.js')).registerTrain]],
  ['predict', async () => [(await import('./commands/predict.js')).registerPredict]],
  ['eval', async () => [(await import('./commands/eval.js')).registerEval]],
  ['classify', async () => [(await import('./commands/classify.js')).registerClassify]],
  ['agent', async () => [(await import('./commands/agent.js')).registerAgent]],
  ['device', async () => [(await import('./commands/device.js')).registerDevice]],
  ['console', async () => [(await import('./commands/console.js')).registerConsole]],
  ['demo', async () => [(await import('./commands/demo.js')).registerDemo]],
  ['deploy', async () => [(await import('./commands/deploy.js')).registerDeploy]],
  ['release', async () => [(await import('./commands/release.js')).registerRelease]],
];

/** The verb argv names, if it names one; otherwise (help, an unknown verb) every verb is registered. */
function verbOf(argv: string[]): string | undefined {
  const first = argv.slice(2).find((arg) => !arg.startsWith('-'));
  return COMMANDS.some(([name]) => name === first) ? first : undefined;
}

export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command('edgetune')
    .description('On-device transfer learning: a frozen int8 backbone, a tiny head trained on your photos.')
    .option('--debug', 'print stack traces for errors')
    .showHelpAfterError()
    .addHelpText(
      'after',
      `
Start here:
  edgetune models                                   which backbones are on disk
  edgetune eval --data photos/                      how well a head learns your classes
  edgetune train --data photos/ -o site.head        train a head (one sub-folder per class)
  edgetune predict --head site.head new/*.jpg       predict new photos
  edgetune demo --exit-when-done                    a console and four devices: the whole fleet loop

Models are found through EDGETUNE_MODEL_DIR (air-gapped sites, CI), the cache, or a verified download.`,
    );
  const verb = verbOf(argv);
  // Commander sees a program option anywhere on the line: `release activate --version 0.2.0` and
  // `console export-head --version 3` would print edgetune's version instead, so it is `edgetune --version` only.
  if (verb === undefined) program.version('0.1.0');
  for (const [name, load] of COMMANDS) {
    if (verb !== undefined && name !== verb) continue;
    for (const register of await load()) register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  return runProgram(await buildProgram(argv), argv);
}
