// `edgetune demo`: a console and several real agents on this machine, the whole fleet loop, a table.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { startConsoleWeb } from '../../console/web.js';
import { type DemoResult, runDemo } from '../../console/demo.js';
import { createLogger } from '../../core/log.js';
import { formatTable, percent, printJson, UsageError } from '../output.js';
import { runUntilSignal } from '../signals.js';
import { port, positiveInt } from '../number-options.js';

interface DemoFlags {
  devices: number;
  data?: string;
  shots: number;
  test: number;
  seed: number;
  dir?: string;
  port: number;
  webPort: number;
  backbone?: string;
  json?: boolean;
  exitWhenDone?: boolean;
  verbose?: boolean;
}

/** flowers128 beside the models (the layout of ../shared), when EDGETUNE_MODEL_DIR points there. */
function defaultData(): string | undefined {
  const models = process.env.EDGETUNE_MODEL_DIR;
  const candidate = models ? join(dirname(resolve(models)), 'datasets', 'flowers128') : undefined;
  return candidate && existsSync(candidate) ? candidate : undefined;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run a fleet on this machine: a console and N real agents, each with its own few photos; train, sync, merge, push, and show what every device gained',
    )
    .option('--devices <n>', 'simulated devices (real agents, one process)', positiveInt('--devices'), 4)
    .option('--data <dir>', 'photos, one sub-folder per class (default: flowers128 beside $EDGETUNE_MODEL_DIR)')
    .option('--shots <n>', 'labelled photos per class each device collects', positiveInt('--shots'), 10)
    .option('--test <n>', 'photos per class in the common test set no device sees', positiveInt('--test'), 40)
    .option('--seed <n>', 'seed for who gets which photos', positiveInt('--seed'), 1)
    .option('--dir <dir>', 'keep the console and device data here (default: a temporary folder, removed on exit)')
    .option('--port <port>', 'embedded broker port (0: any free port)', port('--port', true), 0)
    .option('--web-port <port>', 'web console port while the demo stays up (0: any free port)', port('--web-port', true), 8090)
    .option('--backbone <id|file>', 'backbone for every device (default: the agent default)')
    .option('--exit-when-done', 'exit after the table instead of keeping the console up until Ctrl-C')
    .option('--json', 'print the result as JSON (per-device before/after, minGain) and exit when done')
    .option('--verbose', 'show the console and agent logs (JSON lines on stderr)')
    .addHelpText(
      'after',
      `
What happens: each device gets --shots labelled photos per class (disjoint slices), trains a head on
them and sends it to the console; the console merges the heads, tries the fleet head on a canary
(demo-1) and releases it; every device applies it. Accuracy is measured on --test photos per class
that no device has seen, before and after.

Examples:
  EDGETUNE_MODEL_DIR=../shared/models edgetune demo --exit-when-done
  edgetune demo --data ~/photos/parts --devices 3 --shots 5
  edgetune demo --json | jq .minGain`,
    )
    .action(async (flags: DemoFlags) => {
      const data = flags.data ?? defaultData();
      if (!data) throw new UsageError('--data is required (no flowers128 found beside $EDGETUNE_MODEL_DIR)');
      const dir = flags.dir ?? mkdtempSync(join(tmpdir(), 'edgetune-demo-'));
      const say = flags.json ? () => undefined : (line: string) => process.stderr.write(`demo: ${line}\n`);
      const log = createLogger(flags.verbose ? 'info' : 'error', {}, (line) => process.stderr.write(line));
      try {
        const demo = await runDemo({
          data,
          dir,
          devices: flags.devices,
          shots: flags.shots,
          testPerClass: flags.test,
          seed: flags.seed,
          brokerPort: flags.port,
          ...(flags.backbone ? { backbone: flags.backbone } : {}),
          progress: say,
          log,
        });
        if (flags.json) printJson(demo.result);
        else process.stdout.write(`${formatDemo(demo.result)}\n`);
        if (flags.json || flags.exitWhenDone) return await demo.stop();
        const web = await startConsoleWeb(demo.console, { port: flags.webPort, tokenFile: join(dir, 'web-token'), log }).catch(
          async (err: unknown) => {
            await demo.stop();
            throw err;
          },
        );
        process.stderr.write(`demo: web console ${web.url}\ndemo: broker ${demo.console.brokerUrl}; Ctrl-C to stop\n`);
        await runUntilSignal(async () => {
          await web.close();
          await demo.stop();
        });
      } finally {
        if (!flags.dir) rmSync(dir, { recursive: true, force: true });
      }
    });
}

export function formatDemo(result: DemoResult): string {
  const rows = result.devices.map((d) => [
    d.id,
    d.samples,
    percent(d.before),
    percent(d.after),
    `${d.gain >= 0 ? '+' : ''}${(d.gain * 100).toFixed(1)} pts`,
  ]);
  const table = formatTable(['device', 'photos', 'before (own head)', `after (fleet v${result.fleetVersion})`, 'gain'], rows);
  return [
    table,
    '',
    `${result.classes.length} classes, ${result.testImages} test photos no device saw; fleet head v${result.fleetVersion} ${result.rollout}.`,
    `mean accuracy ${percent(result.meanBefore)} -> ${percent(result.meanAfter)}; smallest gain ${(result.minGain * 100).toFixed(1)} pts; ${result.seconds.toFixed(0)} s.`,
  ].join('\n');
}
