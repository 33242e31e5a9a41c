// How a device starts and stops its agent. systemd on a real device; a plain background process with a
// pid file where there is no systemd (containers, the tests' sshd). The activation logic is the same for
// both: it only asks the manager to restart the agent and whether it is still alive.

import type { ReleaseLayout } from './layout.js';
import { shq } from './layout.js';

export interface ServiceManager {
  readonly name: 'systemd' | 'process';
  /** Stops the running agent (if any) and starts the one in `current`. */
  restart(layout: ReleaseLayout): string;
  stop(layout: ReleaseLayout): string;
  /** A shell test that succeeds while the agent runs. */
  alive(layout: ReleaseLayout): string;
  /** The agent's last log lines, for error messages. */
  logs(layout: ReleaseLayout): string;
  /**
   * Starts `edgetune release apply-update` (`command`) for an update the agent has put in
   * layout.updates, outside the agent's own process tree so it survives the agent's restart. Under
   * systemd the unprivileged agent cannot restart its own service: a root path unit
   * (edgetune-update.path, installed by install.sh) starts it when request.json changes.
   */
  startUpdate(command: string, layout: ReleaseLayout): string;
}

export const UNIT = 'edgetune.service';

export const systemd: ServiceManager = {
  name: 'systemd',
  restart: () => `systemctl restart ${UNIT}`,
  stop: () => `systemctl stop ${UNIT}`,
  alive: () => `systemctl is-active --quiet ${UNIT}`,
  logs: () => `journalctl -u ${UNIT} -n 30 --no-pager -o cat 2>&1 || true`,
  startUpdate: () => `: edgetune-update.path starts edgetune-update.service`,
};

const pidFile = (layout: ReleaseLayout) => shq(`${layout.run}/agent.pid`);

const stopProcess = (layout: ReleaseLayout) =>
  `if [ -f ${pidFile(layout)} ]; then pid=$(cat ${pidFile(layout)}); ` +
  // SIGTERM is a clean stop (the agent drains and closes its store); after 15 s it is killed.
  `if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; kill -KILL "$pid" 2>/dev/null || true; fi; ` +
  `rm -f ${pidFile(layout)}; fi`;

export const processManager: ServiceManager = {
  name: 'process',
  restart: (layout) =>
    [
      stopProcess(layout),
      `mkdir -p ${shq(layout.run)} ${shq(posixDir(layout.log))} ${shq(layout.cache)}`,
      // setsid + nohup + every fd redirected: the agent outlives the shell (and an SSH session) that started it.
      `XDG_CACHE_HOME=${shq(layout.cache)} setsid nohup ${shq(`${layout.current}/bin/edgetune`)} agent --config ${shq(layout.config)} >> ${shq(layout.log)} 2>&1 < /dev/null &`,
      `echo $! > ${pidFile(layout)}`,
    ].join('\n'),
  stop: stopProcess,
  alive: (layout) => `[ -f ${pidFile(layout)} ] && kill -0 "$(cat ${pidFile(layout)})" 2>/dev/null`,
  logs: (layout) => `tail -n 30 ${shq(layout.log)} 2>/dev/null || true`,
  startUpdate: (command, layout) =>
    `mkdir -p ${shq(posixDir(layout.log))}; setsid nohup /bin/sh -c ${shq(command)} >> ${shq(posixDir(layout.log) + '/update.log')} 2>&1 < /dev/null &`,
};

function posixDir(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

export function serviceManager(name: string): ServiceManager {
  if (name === 'systemd') return systemd;
  if (name === 'process') return processManager;
  throw new Error(`unknown service manager "${name}" (systemd or process)`);
}
