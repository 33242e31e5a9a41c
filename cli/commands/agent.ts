// `edgetune agent`: run the on-device agent until SIGTERM/SIGINT.

import type { Command } from 'commander';
import { detectDevice } from '../../devices/detect.js';
import { profileById } from '../../devices/profiles.js';
import { Agent, effectiveSettings } from '../../agent/agent.js';
import { loadAgentConfig } from '../../agent/config.js';
import { ConfigError } from '../../core/errors.js';
import { printJson } from '../output.js';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the on-device agent: collect samples, label, train, predict, serve the labelling page')
    .option('-c, --config <file>', 'config file, YAML or JSON (see docs/agent.md); EDGETUNE_<SECTION>_<FIELD> overrides')
    .option('--print-config', 'print the effective config (file + environment + defaults) and exit')
    .addHelpText(
      'after',
      `
Examples:
  edgetune agent --config /etc/edgetune/agent.yaml
  EDGETUNE_HTTP_PORT=9000 EDGETUNE_DATA_DIR=/var/lib/edgetune edgetune agent --print-config`,
    )
    .action(async (flags: { config?: string; printConfig?: boolean }) => {
      const config = loadAgentConfig(flags.config);
      const detection = detectDevice();
      const profile = config.device.profile === 'auto' ? detection.profile : profileById(config.device.profile);
      if (!profile)
        throw new ConfigError(
          'CONFIG_INVALID',
          `${flags.config ?? 'config'}: field "device.profile": unknown profile "${config.device.profile}"`,
        );
      if (flags.printConfig) return printJson({ config, profile: profile.id, settings: effectiveSettings(config, profile) });
      // Signal handlers go in before the agent starts: a SIGTERM during start-up (systemd stopping a
      // service that is still loading its model) stops it as soon as it is up, with a clean exit.
      let stopRequested = false;
      let requestStop = () => {
        stopRequested = true;
      };
      const onSignal = () => requestStop();
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      try {
        const agent = await Agent.start(config, { profile });
        await new Promise<void>((resolve) => {
          requestStop = () => void agent.stop().then(resolve, resolve);
          if (stopRequested) requestStop();
        });
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    });
}
