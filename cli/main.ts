// The `edgetune` command: one verb per job, each with its own --help.

import { Command } from 'commander';
import { registerAgent } from './commands/agent.js';
import { registerClassify } from './commands/classify.js';
import { registerConsole } from './commands/console.js';
import { registerDemo } from './commands/demo.js';
import { registerDeploy } from './commands/deploy.js';
import { registerDevice } from './commands/device.js';
import { registerRelease } from './commands/release.js';
import { registerEmbed } from './commands/embed.js';
import { registerEval } from './commands/eval.js';
import { registerModel, registerQuantize } from './commands/model.js';
import { registerModels } from './commands/models.js';
import { registerPredict } from './commands/predict.js';
import { registerTrain } from './commands/train.js';
import { runProgram } from './run.js';

export function buildProgram(): Command {
  const program = new Command('edgetune')
    .description('On-device transfer learning: a frozen int8 backbone, a tiny head trained on your photos.')
    .version('0.1.0')
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
  registerModels(program);
  registerModel(program);
  registerQuantize(program);
  registerEmbed(program);
  registerTrain(program);
  registerPredict(program);
  registerEval(program);
  registerClassify(program);
  registerAgent(program);
  registerDevice(program);
  registerConsole(program);
  registerDemo(program);
  registerDeploy(program);
  registerRelease(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  return runProgram(buildProgram(), argv);
}
