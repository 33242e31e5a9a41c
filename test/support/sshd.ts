// A real OpenSSH server for the deploy tests: Debian's sshd on a loopback port with its own host key,
// key auth for the current user with a throwaway key (and password auth on, so a wrong password is
// refused by sshd itself). The "device root" is a temp folder the deploy uses as its install prefix.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from './mqtt.js';

export interface Sshd {
  port: number;
  user: string;
  clientKey: Buffer;
  /** A known_hosts line for this server. */
  knownHostsLine: string;
  stop(): Promise<void>;
}

export const SSHD = '/usr/sbin/sshd';

export interface SshdOptions {
  /** Words sshd is started behind (an emulated device's namespace): its sessions run there. */
  prefix?: string[];
  /** Environment of every session (sshd's SetEnv). */
  env?: Record<string, string>;
}

export async function startSshd(dir: string, options: SshdOptions = {}): Promise<Sshd> {
  mkdirSync(dir, { recursive: true });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  const port = await freeLoopbackPort();
  const user = userInfo().username;
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `AllowUsers ${user}`,
      'StrictModes no',
      'UsePAM no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin yes',
      'Subsystem sftp internal-sftp',
      'LogLevel ERROR',
      ...Object.entries(options.env ?? {}).map(([name, value]) => `SetEnv "${name}=${value}"`),
      '',
    ].join('\n'),
  );
  // Run as root, sshd wants its privilege-separation folder; as another user it runs without one.
  if (process.getuid?.() === 0) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const [program, ...args] = [...(options.prefix ?? []), SSHD, '-D', '-e', '-f', join(dir, 'sshd_config')];
  const child: ChildProcess = spawn(program!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error(`sshd did not listen on ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const hostPub = readFileSync(join(dir, 'host_key.pub'), 'utf8').trim().split(/\s+/);
  return {
    port,
    user,
    clientKey: readFileSync(join(dir, 'client_key')),
    knownHostsLine: `[127.0.0.1]:${port} ${hostPub[0]} ${hostPub[1]}\n`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
