// One SSH session to a device (the ssh2 library): host key checked against known_hosts before any
// credential is sent, shell scripts run with their exit code, and files uploaded over SFTP with resume
// (an interrupted upload continues from the bytes already there).

import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { Client, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { DeployError, errorMessage } from '../../core/errors.js';
import type { Exec, ExecResult } from '../../runtime/release/activate.js';
import { shq } from '../../runtime/release/layout.js';
import { addKnownKey, fingerprint, keyType, knownKeys } from './known-hosts.js';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  password?: string | undefined;
  privateKey?: Buffer | undefined;
}

export interface HostKeyPolicy {
  knownHostsFile: string;
  /** Add an unknown host's key instead of refusing it. A changed key is refused either way. */
  trustOnFirstUse: boolean;
}

const CHUNK = 1024 * 1024;

export class SshSession implements Exec {
  private sftpSession: Promise<SFTPWrapper> | undefined;
  /**
   * Run scripts as root through `sudo -n` (a login like Raspberry Pi OS's `pi` cannot write /opt or
   * restart services). Files then go over SFTP to `staging`, a folder of the login's own, and are moved
   * into place as root.
   */
  elevated: { staging: string } | undefined;

  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
    /** Set when the host key was added to known_hosts by this connection. */
    readonly trustedNow: boolean,
  ) {}

  static connect(target: SshTarget, policy: HostKeyPolicy, options: { readyTimeoutMs?: number } = {}): Promise<SshSession> {
    const where = `${target.username}@${target.host}:${target.port}`;
    const client = new Client();
    let refusal: DeployError | undefined;
    let trustedNow = false;
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.username,
      readyTimeout: options.readyTimeoutMs ?? 15_000,
      ...(target.password !== undefined ? { password: target.password } : {}),
      ...(target.privateKey ? { privateKey: target.privateKey } : {}),
      ...(process.env.SSH_AUTH_SOCK && !target.privateKey && target.password === undefined ? { agent: process.env.SSH_AUTH_SOCK } : {}),
      hostVerifier: (key: Buffer) => {
        const known = knownKeys(policy.knownHostsFile, target.host, target.port);
        const type = keyType(key);
        if (known.some((k) => k.key.equals(key))) return true;
        // A pinned host stays pinned: a key of another type than the pinned ones is no new host, it is
        // an impostor that does not have the pinned key (trust on first use is for first use only).
        const pinned = known.find((k) => k.type === type) ?? known[0];
        if (pinned) {
          refusal = new DeployError(
            'HOST_KEY_CHANGED',
            `${where}: host key ${type} ${fingerprint(key)} does not match ${policy.knownHostsFile}:${pinned.line} (${pinned.type}); a reinstalled device or someone in between. Remove that line only if you know the device was reinstalled`,
          );
          return false;
        }
        if (!policy.trustOnFirstUse) {
          refusal = new DeployError(
            'HOST_KEY_UNKNOWN',
            `${where}: unknown host key ${type} ${fingerprint(key)} (not in ${policy.knownHostsFile}); check it on the device (ssh-keygen -lf /etc/ssh/ssh_host_${type.replace('ssh-', '')}_key.pub) and re-run with --trust-on-first-use`,
          );
          return false;
        }
        addKnownKey(policy.knownHostsFile, target.host, target.port, key);
        trustedNow = true;
        return true;
      },
    };
    return new Promise((resolve, reject) => {
      client.once('ready', () => resolve(new SshSession(client, target, trustedNow)));
      client.once('error', (err: Error & { level?: string; code?: string }) => {
        client.end();
        if (refusal) return reject(refusal);
        if (err.level === 'client-authentication') {
          const how =
            [
              target.password !== undefined ? 'password' : '',
              target.privateKey ? 'key' : '',
              !target.privateKey && target.password === undefined && process.env.SSH_AUTH_SOCK ? 'agent' : '',
            ]
              .filter(Boolean)
              .join(', ') || 'no credentials';
          return reject(new DeployError('DEPLOY_AUTH_FAILED', `${where}: authentication failed (tried ${how})`));
        }
        if (
          err.code === 'ECONNREFUSED' ||
          err.code === 'EHOSTUNREACH' ||
          err.code === 'ENETUNREACH' ||
          err.code === 'ENOTFOUND' ||
          err.code === 'ETIMEDOUT' ||
          err.level === 'client-timeout'
        ) {
          return reject(new DeployError('DEPLOY_UNREACHABLE', `${where}: unreachable (${err.code ?? 'timed out'})`));
        }
        reject(new DeployError('DEPLOY_SSH_FAILED', `${where}: ${err.message}`));
      });
      client.connect(config);
    });
  }

  /** Runs a POSIX shell script on the device (as root when elevated, unless `asLogin`). */
  run(script: string, options: { timeoutMs?: number; asLogin?: boolean } = {}): Promise<ExecResult> {
    const command = this.elevated && !options.asLogin ? `sudo -n sh -c ${shq(script)}` : `sh -c ${shq(script)}`;
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, channel) => {
        if (err) return reject(new DeployError('DEPLOY_SSH_FAILED', `${this.target.host}: ${err.message}`));
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => {
          channel.close();
          reject(new DeployError('DEPLOY_TIMEOUT', `${this.target.host}: a command took longer than ${options.timeoutMs} ms`));
        }, options.timeoutMs ?? 120_000);
        channel.on('data', (d: Buffer) => (stdout += d.toString()));
        channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        channel.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ code: code ?? -1, stdout, stderr });
        });
      });
    });
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= new Promise((resolve, reject) =>
      this.client.sftp((err, sftp) =>
        err ? reject(new DeployError('DEPLOY_SSH_FAILED', `${this.target.host}: sftp: ${err.message}`)) : resolve(sftp),
      ),
    );
    return this.sftpSession;
  }

  /** Writes a small file atomically with `mode` (temp file, chmod, rename; as root when elevated). */
  async writeFile(path: string, data: string | Buffer, mode: number): Promise<void> {
    const sftp = await this.sftp();
    const temp = this.elevated ? `${this.elevated.staging}/${path.slice(path.lastIndexOf('/') + 1)}.tmp` : `${path}.tmp`;
    await new Promise<void>((resolve, reject) => sftp.writeFile(temp, data, { mode }, (err) => (err ? reject(err) : resolve())));
    await new Promise<void>((resolve, reject) => sftp.chmod(temp, mode, (err) => (err ? reject(err) : resolve())));
    // As root, the file becomes root's (the staging copy was the login's).
    const moved = await this.run(
      this.elevated ? `chown 0:0 ${shq(temp)} && mv -f ${shq(temp)} ${shq(path)}` : `mv -f ${shq(temp)} ${shq(path)}`,
    );
    if (moved.code !== 0) throw new DeployError('DEPLOY_REMOTE_FAILED', `${this.target.host}: writing ${path}: ${moved.stderr.trim()}`);
  }

  /**
   * Uploads `local` to `remote` through `remote.part`, resuming from what the part file already holds;
   * the part becomes `remote` only when its sha256 matches. An upload already complete is skipped.
   */
  async upload(
    local: string,
    remote: string,
    sha256: string,
    options: { onProgress?: (sent: number, total: number) => void; signal?: AbortSignal } = {},
  ): Promise<{ resumedFrom: number; skipped: boolean }> {
    const total = statSync(local).size;
    const check = await this.run(
      `f=${shq(remote)}; if [ -f "$f" ]; then sha256sum "$f" | cut -d' ' -f1; else echo none; fi; stat -c %s "$f.part" 2>/dev/null || echo 0`,
    );
    const [existing = '', partSize = '0'] = check.stdout.trim().split('\n');
    if (existing === sha256) return { resumedFrom: total, skipped: true };
    let offset = Number(partSize);
    if (!(offset >= 0 && offset <= total)) offset = 0;
    const resumedFrom = offset;
    const sftp = await this.sftp();
    const part = `${remote}.part`;
    const handle = await new Promise<Buffer>((resolve, reject) =>
      sftp.open(part, offset > 0 ? 'r+' : 'w', 0o600, (err, h) =>
        err ? reject(new DeployError('DEPLOY_UPLOAD_FAILED', `${this.target.host}: ${part}: ${err.message}`)) : resolve(h),
      ),
    );
    const fd = openSync(local, 'r');
    const buffer = Buffer.alloc(CHUNK);
    try {
      while (offset < total) {
        if (options.signal?.aborted)
          throw new DeployError(
            'DEPLOY_INTERRUPTED',
            `${this.target.host}: upload interrupted at ${offset} of ${total} bytes; run again to resume`,
          );
        const n = readSync(fd, buffer, 0, Math.min(CHUNK, total - offset), offset);
        await new Promise<void>((resolve, reject) =>
          sftp.write(handle, buffer, 0, n, offset, (err) =>
            err ? reject(new DeployError('DEPLOY_UPLOAD_FAILED', `${this.target.host}: writing ${part}: ${errorMessage(err)}`)) : resolve(),
          ),
        );
        offset += n;
        options.onProgress?.(offset, total);
      }
    } finally {
      closeSync(fd);
      await new Promise<void>((resolve) => sftp.close(handle, () => resolve()));
    }
    const done = await this.run(
      `p=${shq(part)}; if [ "$(sha256sum "$p" | cut -d' ' -f1)" = ${shq(sha256)} ]; then mv -f "$p" ${shq(remote)}; else rm -f "$p"; echo mismatch; fi`,
    );
    if (done.stdout.includes('mismatch'))
      throw new DeployError(
        'DEPLOY_UPLOAD_FAILED',
        `${this.target.host}: ${remote} does not have sha256 ${sha256} after the upload; it was removed, run again`,
      );
    return { resumedFrom, skipped: false };
  }

  close(): void {
    this.client.end();
  }
}

/** sha256 of a local file, streamed. */
export function fileSha256(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const buffer = Buffer.alloc(CHUNK);
  try {
    for (let n; (n = readSync(fd, buffer, 0, CHUNK, null)) > 0;) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
