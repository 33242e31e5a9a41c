// A real systemd (this machine's, Debian's) booted as PID 1 of its own PID, mount, UTS, IPC and cgroup
// namespaces, on an overlay of this machine's root file system: the users, units and /opt a test
// installs land in the overlay's upper folder and nothing on this machine changes. It shares this
// machine's network (a loopback broker or port reaches it) and sees `share` folders at the same paths.
// Needs root, overlayfs and cgroup2. The boot target starts journald and nothing else of the host's; as
// in systemd-nspawn, /sys and /proc/sys are read-only, and the units that would act on this machine's
// kernel or devices (sysctl, modules, udev, binfmt) or sweep its folders (tmpfiles) are masked.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Exec } from '../../runtime/release/activate.js';
import { shq } from '../../runtime/release/layout.js';
import { shellExec } from '../../runtime/release/local.js';
import { until } from './until.js';

export interface SystemdContainer {
  /** systemd's pid as this machine sees it. */
  pid: number;
  /** Runs a shell script inside, as root. */
  exec: Exec;
  stop(): Promise<void>;
}

const TARGET = 'edgetune-test.target';
const MASKED = [
  'systemd-sysctl.service',
  'systemd-modules-load.service',
  'systemd-udevd.service',
  'systemd-udev-trigger.service',
  'systemd-udev-settle.service',
  'systemd-binfmt.service',
  'systemd-tmpfiles-setup.service',
  'systemd-tmpfiles-setup-dev.service',
  'systemd-tmpfiles-clean.timer',
];
/** The unified cgroup hierarchy on a hybrid host, or the cgroup2 root. */
const CGROUP2 = existsSync('/sys/fs/cgroup/unified/cgroup.procs') ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup';

export async function bootSystemd(dir: string, share: string[] = []): Promise<SystemdContainer> {
  const [upper, work, root] = ['upper', 'work', 'root'].map((d) => join(dir, d)) as [string, string, string];
  for (const d of [upper, work, root, join(upper, 'etc/systemd/system')]) mkdirSync(d, { recursive: true });
  for (const unit of MASKED)
    if (!existsSync(join(upper, 'etc/systemd/system', unit))) symlinkSync('/dev/null', join(upper, 'etc/systemd/system', unit));
  writeFileSync(
    join(upper, 'etc/systemd/system', TARGET),
    '[Unit]\nDescription=edgetune test boot\nWants=systemd-journald.socket systemd-journald.service\n',
  );
  // Its own cgroup subtree, so its slices never meet this machine's (or another test's) cgroups.
  const cgroup = join(CGROUP2, `edgetune-test-${process.pid}-${Date.now()}`);
  const inside = [
    'set -e',
    `mount -t overlay edgetune-test -o lowerdir=/,upperdir=${shq(upper)},workdir=${shq(work)} ${shq(root)}`,
    `mount -t proc proc ${shq(`${root}/proc`)}`,
    ...['proc/sys', 'proc/sysrq-trigger'].map(
      (p) => `mount --bind ${shq(`${root}/${p}`)} ${shq(`${root}/${p}`)} && mount -o remount,bind,ro ${shq(`${root}/${p}`)}`,
    ),
    `mount -t tmpfs tmpfs ${shq(`${root}/run`)}`,
    `mount --rbind /dev ${shq(`${root}/dev`)}`,
    `mount -t sysfs -o ro sysfs ${shq(`${root}/sys`)}`,
    `mount -t cgroup2 cgroup2 ${shq(`${root}/sys/fs/cgroup`)}`,
    ...share.map((d) => `mkdir -p ${shq(root + d)} && mount --bind ${shq(d)} ${shq(root + d)}`),
    `exec chroot ${shq(root)} /usr/bin/env container=edgetune-test /lib/systemd/systemd --unit=${TARGET} --log-target=journal`,
  ].join('\n');
  const boot = [
    'set -e',
    `mkdir ${shq(cgroup)}`,
    `echo $$ > ${shq(`${cgroup}/cgroup.procs`)}`,
    `exec unshare --mount --pid --fork --uts --ipc --cgroup --propagation private sh -c ${shq(inside)}`,
  ].join('\n');
  const child: ChildProcess = spawn('sh', ['-c', boot], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // unshare --fork: systemd is its only child.
  const pid = await until(
    'systemd started',
    () => {
      if (child.exitCode !== null) throw new Error(`systemd did not boot: ${stderr}`);
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      return children !== '' && readFileSync(`/proc/${children}/comm`, 'utf8').trim() === 'systemd' ? Number(children) : undefined;
    },
    20_000,
    50,
  );
  const exec = shellExec({ prefix: ['nsenter', '-t', String(pid), '-m', '-p', '-u', '-i', '-C', '-r', '-w', '--'] });
  await until(
    'systemd running',
    async () => /^(running|degraded)$/m.test((await exec.run('systemctl is-system-running')).stdout),
    30_000,
    100,
  );
  return {
    pid,
    exec,
    stop: async () => {
      process.kill(pid, 'SIGKILL');
      await exited;
      removeCgroup(cgroup);
    },
  };
}

/** An emptied cgroup tree goes with rmdir, children first. */
function removeCgroup(path: string): void {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) if (entry.isDirectory()) removeCgroup(join(path, entry.name));
  rmdirSync(path);
}
