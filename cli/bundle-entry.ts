// The `edgetune` a device bundle runs: the agent, device info, embedding photos and the device side of
// releases, without the laptop's tooling (quantize, SSH, esbuild). esbuild bundles this file into edgetune.js.

import { Command } from 'commander';
import { registerAgent } from './commands/agent.js';
import { registerDevice } from './commands/device.js';
import { registerEmbed } from './commands/embed.js';
import { registerRelease } from './commands/release.js';
import { runProgram } from './run.js';

const program = new Command('edgetune')
  .description('edgetune on a device: the agent and its releases')
  .option('--debug', 'print stack traces for errors');
registerAgent(program);
registerDevice(program);
registerEmbed(program);
registerRelease(program);
process.exitCode = await runProgram(program, process.argv);
