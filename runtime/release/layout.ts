// Where an edgetune release lives on a device, under a prefix ("/" on a real device, a temp folder in
// tests). Every release is a folder of its own; `current` is a symlink switched atomically (a new link
// renamed over the old one), so the agent always starts from one whole release.
//
//   <prefix>/opt/edgetune/releases/<version>/   a bundle, unpacked (install.sh, edgetune.mjs, models/, ...)
//   <prefix>/opt/edgetune/current -> releases/<version>
//   <prefix>/opt/edgetune/previous               the version `current` pointed to before the last switch
//   <prefix>/opt/edgetune/incoming/              uploads and downloads in progress
//   <prefix>/etc/edgetune/agent.json             the agent's config with its MQTT login (0600)
//   <prefix>/etc/edgetune/fleet.pub              the fleet's public key (0600)
//   <prefix>/var/lib/edgetune/                   the sample store (kept across releases)
//   <prefix>/var/lib/edgetune/updates/           an agent update the agent downloaded: bundle, request.json,
//                                                and result.json from the activation

import { posix } from 'node:path';
import { DeployError } from '../../core/errors.js';

export interface ReleaseLayout {
  prefix: string;
  opt: string;
  releases: string;
  current: string;
  previousFile: string;
  incoming: string;
  etc: string;
  config: string;
  publicKey: string;
  data: string;
  updates: string;
  cache: string;
  log: string;
  run: string;
}

export function releaseLayout(prefix: string): ReleaseLayout {
  if (!posix.isAbsolute(prefix)) throw new DeployError('DEPLOY_BAD_PREFIX', `install prefix "${prefix}" must be an absolute path`);
  const p = (...parts: string[]) => posix.join(prefix, ...parts);
  const opt = p('opt/edgetune');
  return {
    prefix,
    opt,
    releases: posix.join(opt, 'releases'),
    current: posix.join(opt, 'current'),
    previousFile: posix.join(opt, 'previous'),
    incoming: posix.join(opt, 'incoming'),
    etc: p('etc/edgetune'),
    config: p('etc/edgetune/agent.json'),
    publicKey: p('etc/edgetune/fleet.pub'),
    data: p('var/lib/edgetune'),
    updates: p('var/lib/edgetune/updates'),
    cache: p('var/cache/edgetune'),
    log: p('var/log/edgetune/agent.log'),
    run: posix.join(opt, 'run'),
  };
}

const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$/;

/** Release versions become folder names and shell words: letters, digits, dot, plus, dash, underscore. */
export function checkVersion(version: string): string {
  if (!VERSION.test(version))
    throw new DeployError(
      'DEPLOY_BAD_VERSION',
      `release version ${JSON.stringify(version.slice(0, 80))} must be 1-64 letters, digits, dots, dashes, underscores or pluses`,
    );
  return version;
}

/** A word for sh, quoted: safe whatever it contains. */
export function shq(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
