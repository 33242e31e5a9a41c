// The exit codes and error lines docs/cli.md promises: 2 and a short usage line for every usage
// error (with the nearest correct name), 1 for an error in the data; JSON where the output is data.
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { printJson } from '../../cli/output.js';
import { runCli } from '../support/cli.js';
import { FLOWERS_DIR, IMAGES_DIR, tempDir } from '../support/paths.js';

const tmp = tempDir('edgetune-exit-');
afterAll(() => tmp.remove());

describe('usage errors exit 2 with one short usage line', () => {
  it('an unknown command names the nearest one', async () => {
    const r = await runCli(['trian', '--data', 'x']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "edgetune: unknown command 'trian' (did you mean train?)\nusage: edgetune [options] [command]\nsee 'edgetune --help' for the options and an example\n",
    );
  });

  it('an unknown option is named (with the nearest one) even when a required option is missing', async () => {
    const r = await runCli(['train', '--dta', 'photos/']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toEqual([
      "edgetune: unknown option '--dta' (did you mean --data?)",
      'usage: edgetune train --data <dir> [options]',
      "see 'edgetune train --help' for the options and an example",
      '',
    ]);
    const sub = await runCli(['console', 'devices', '--jsn']);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toMatch(
      /^edgetune: unknown option '--jsn' \(did you mean --json\?\)\nusage: edgetune console devices \[options\]\n/,
    );
  });

  it('a misspelt sub-command of a group with a default one (console start) is named, with the nearest one', async () => {
    const [typo, extra] = await Promise.all([runCli(['console', 'devcies']), runCli(['console', 'start', 'extra'])]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe(
      "edgetune: unknown command 'devcies' for 'edgetune console' (did you mean devices?)\n" +
        'usage: edgetune console [options] [command]\n' +
        "see 'edgetune console --help' for the options and an example\n",
    );
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(
      /^edgetune: too many arguments for 'start'\. Expected 0 arguments but got 1\.\nusage: edgetune console start /,
    );
  });

  it('a missing required option, and a group without its verb, exit 2', async () => {
    const [train, sdcard, model] = await Promise.all([
      runCli(['train']),
      runCli(['deploy', 'sdcard', '--boot', tmp.path]),
      runCli(['model']),
    ]);
    expect(train.code).toBe(2);
    expect(train.stderr).toMatch(
      /^edgetune: required option '--data <dir>' not specified\nusage: edgetune train --data <dir> \[options\]\n/,
    );
    expect(train.stderr).not.toContain('Options:');
    expect(sdcard.code).toBe(2);
    expect(sdcard.stderr).toMatch(
      /required option '--bundle <file>' not specified\nusage: edgetune deploy sdcard --boot <path> --bundle <file> --device <id> \[options\]/,
    );
    expect(model.code).toBe(2);
    expect(model.stderr).toBe(
      "edgetune: 'edgetune model' needs a command: info, import\n" +
        'usage: edgetune model [options] [command]\n' +
        "see 'edgetune model --help' for the options and an example\n",
    );
    const [deploy, release] = await Promise.all([runCli(['deploy']), runCli(['release'])]);
    expect([deploy.code, release.code]).toEqual([2, 2]);
    expect(deploy.stderr).toMatch(/^edgetune: 'edgetune deploy' needs a command: bundle, flash, sdcard, try\nusage: edgetune deploy /);
    expect(release.stderr).toMatch(/^edgetune: 'edgetune release' needs a command: activate, apply-update, status\n/);
    expect(`${deploy.stderr}${release.stderr}`).not.toContain('Commands:');
  });
});

describe('deploy: usage errors the command finds itself exit 2 with its usage line', () => {
  it('an unknown --target, an unknown --mode, no hosts, and --console without --fleet and --broker', async () => {
    const bundle = join(tmp.path, 'no.tar.gz');
    const [target, mode, hosts, fleet] = await Promise.all([
      runCli(['deploy', 'bundle', '--target', 'linux-foo', '-o', tmp.path]),
      runCli(['deploy', 'sdcard', '--boot', tmp.path, '--bundle', bundle, '--device', 'pi-1', '--mode', 'foo']),
      runCli(['deploy', 'flash', '--bundle', bundle]),
      runCli(['deploy', 'sdcard', '--boot', tmp.path, '--bundle', bundle, '--device', 'pi-1', '--console', tmp.path]),
    ]);
    expect([target.code, mode.code, hosts.code, fleet.code]).toEqual([2, 2, 2, 2]);
    expect(target.stderr).toBe(
      'edgetune: --target: "linux-foo" is not one of linux-arm64, linux-armv7, linux-x64\n' +
        'usage: edgetune deploy bundle --target <platform> [options]\n' +
        "see 'edgetune deploy bundle --help' for the options and an example\n",
    );
    expect(mode.stderr).toMatch(/^edgetune: --mode: "foo" is not cloud-init or firstrun\nusage: edgetune deploy sdcard --boot/);
    expect(hosts.stderr).toMatch(/^edgetune: no devices: give hosts or --inventory FILE\nusage: edgetune deploy flash --bundle <file>/);
    expect(fleet.stderr).toMatch(/^edgetune: --console needs --fleet and --broker .*\nusage: edgetune deploy sdcard /);
    expect(`${target.stderr}${mode.stderr}${hosts.stderr}${fleet.stderr}`).not.toContain('CONFIG_INVALID');
    expect(readdirSync(tmp.path).filter((f) => f.endsWith('.tar.gz'))).toEqual([]);
  });
});

describe('deploy flash: a host it cannot parse is a usage error', () => {
  it('a malformed [user@]host[:port], a port out of range and an unknown key=value exit 2 naming the host', async () => {
    const bundle = join(tmp.path, 'no.tar.gz');
    const runs = await Promise.all(
      ['pi@@nowhere', 'pi@host-1:70000', 'pi@host-1 colour=red'].map((host) => runCli(['deploy', 'flash', host, '--bundle', bundle])),
    );
    expect(runs.map((r) => r.code)).toEqual([2, 2, 2]);
    const usage =
      "usage: edgetune deploy flash --bundle <file> [options] [hosts...]\nsee 'edgetune deploy flash --help' for the options and an example\n";
    expect(runs[0]!.stderr).toBe(`edgetune: host "pi@@nowhere": "pi@@nowhere" is not [user@]host[:port]\n${usage}`);
    expect(runs[1]!.stderr).toBe(`edgetune: host "pi@host-1:70000": port 70000 is out of range\n${usage}`);
    expect(runs[2]!.stderr).toMatch(/^edgetune: host "pi@host-1 colour=red": "colour=red" is not key=value with a key of id, /);
    expect(runs.map((r) => r.stderr).join('')).not.toContain('CONFIG_INVALID');
  });

  it('--console-user without EDGETUNE_CONSOLE_PASSWORD exits 2 before it reads the console folder', async () => {
    const consoleDir = join(tmp.path, 'no-such-console');
    const r = await runCli(
      [
        'deploy',
        'flash',
        'pi@host-1',
        '--bundle',
        join(tmp.path, 'no.tar.gz'),
        '--console',
        consoleDir,
        '--fleet',
        'greenhouse',
        '--broker',
        'mqtt://console.local:1883',
        '--console-user',
        'operator',
      ],
      { EDGETUNE_CONSOLE_PASSWORD: '' },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^edgetune: --console-user needs the password in EDGETUNE_CONSOLE_PASSWORD\nusage: edgetune deploy flash /);
    expect(existsSync(consoleDir)).toBe(false);
  });
});

describe('number options refuse what is not a number in range, naming the option and the value', () => {
  it('deploy flash --concurrency, release activate --port and --timeout, console start --port, export-head --version', async () => {
    const [concurrency, port, timeout, broker, version] = await Promise.all([
      runCli(['deploy', 'flash', 'pi@host-1', '--bundle', join(tmp.path, 'no.tar.gz'), '--concurrency', 'abc']),
      runCli(['release', 'activate', '--version', '0.2.0', '--prefix', tmp.path, '--port', '70000']),
      runCli(['release', 'activate', '--version', '0.2.0', '--prefix', tmp.path, '--timeout', '-5']),
      runCli(['console', 'start', '--dir', join(tmp.path, 'console'), '--port', '1883x']),
      runCli(['console', 'export-head', '--device', 'pi-1', '--version', '1.5', '-o', join(tmp.path, 'x.head')]),
    ]);
    expect([concurrency.code, port.code, timeout.code, broker.code, version.code]).toEqual([2, 2, 2, 2, 2]);
    expect(concurrency.stderr).toMatch(
      /^edgetune: --concurrency must be a positive whole number, got "abc"\nusage: edgetune deploy flash --bundle <file> \[options\]/,
    );
    expect(port.stderr).toMatch(/^edgetune: --port must be a port from 1 to 65535, got "70000"\nusage: edgetune release activate /);
    expect(timeout.stderr).toMatch(/^edgetune: --timeout must be a number of seconds above 0, got "-5"\n/);
    expect(broker.stderr).toMatch(/^edgetune: --port must be a port from 0 \(any free port\) to 65535, got "1883x"\n/);
    expect(version.stderr).toMatch(/^edgetune: --version must be a positive whole number, got "1.5"\n/);
    expect(readdirSync(tmp.path)).not.toContain('console');
  });
});

describe('errors in the data exit 1', () => {
  it('a missing head file, a missing dataset folder and a dataset of one class', async () => {
    const one = join(tmp.path, 'one-class', 'daisy');
    mkdirSync(one, { recursive: true });
    for (const f of readdirSync(join(FLOWERS_DIR, 'daisy')).sort().slice(0, 3)) symlinkSync(join(FLOWERS_DIR, 'daisy', f), join(one, f));
    const [head, data, classes] = await Promise.all([
      runCli(['predict', '--head', join(tmp.path, 'missing.head'), join(IMAGES_DIR, 'cat.bmp')]),
      runCli(['eval', '--data', join(tmp.path, 'nowhere')]),
      runCli(['train', '--data', join(tmp.path, 'one-class'), '-o', join(tmp.path, 'x.head')]),
    ]);
    expect([head.code, data.code, classes.code]).toEqual([1, 1, 1]);
    expect(head.stderr).toMatch(/missing\.head: cannot read head file: .*\[HEAD_UNREADABLE\]/);
    expect(data.stderr).toMatch(/nowhere: not a folder .*\[DATASET_NOT_FOUND\]/);
    expect(classes.stderr).toMatch(/one-class: a softmax head needs at least 2 class folders, found 1 \[DATASET_TOO_FEW_CLASSES\]/);
  });
});

describe('console verbs that read a console refuse a missing folder and create nothing', () => {
  it('devices, classes, quarantine and push-update on a folder that is not there, or is not a console', async () => {
    const missing = join(tmp.path, 'no-console');
    const plain = join(tmp.path, 'plain-folder');
    mkdirSync(plain);
    const runs = await Promise.all([
      runCli(['console', 'devices', '--dir', missing]),
      runCli(['console', 'classes', '--dir', missing, '--json']),
      runCli(['console', 'quarantine', '--dir', missing]),
      runCli(['console', 'push-update', 'b.tar.gz', '--dir', missing]),
      runCli(['console', 'devices', '--dir', plain, '--json']),
    ]);
    expect(runs.map((r) => r.code)).toEqual([1, 1, 1, 1, 1]);
    for (const r of runs.slice(0, 4))
      expect(r.stderr).toBe(
        `edgetune: ${missing}: no such folder; start the console there first (edgetune console start --dir ${missing}) or give the --dir of one [CONSOLE_NO_DIR]\n`,
      );
    expect(runs[4]!.stderr).toMatch(/plain-folder: not a console folder \(no console\.json\); .*\[CONSOLE_NO_DIR\]\n$/);
    expect(existsSync(missing)).toBe(false);
    expect(readdirSync(plain)).toEqual([]);
  });
});

describe('JSON output', () => {
  it('release status --json: the current release and the installed ones', async () => {
    const prefix = join(tmp.path, 'device');
    const empty = await runCli(['release', 'status', '--prefix', prefix, '--json']);
    expect(empty.code).toBe(0);
    expect(JSON.parse(empty.stdout)).toEqual({ current: null, installed: [] });
    for (const v of ['0.1.0', '0.2.0']) mkdirSync(join(prefix, 'opt/edgetune/releases', v), { recursive: true });
    symlinkSync('releases/0.2.0', join(prefix, 'opt/edgetune/current'));
    const two = await runCli(['release', 'status', '--prefix', prefix, '--json']);
    expect(JSON.parse(two.stdout)).toEqual({ current: '0.2.0', installed: ['0.1.0', '0.2.0'] });
    expect((await runCli(['release', 'status', '--prefix', prefix])).stdout).toBe('0.2.0\n');
  });

  it('rounds measurements to 6 significant digits, and keeps every digit of data when asked', () => {
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
    try {
      printJson({ minGain: 0.04500000000000004, accuracy: 0.7534722222, samples: 12, tiny: 1.234567891e-7 });
      printJson({ scale: 0.023528477177023888 }, { exact: true });
    } finally {
      write.mockRestore();
    }
    const [measured, exact] = out
      .trim()
      .split('\n}\n')
      .map((t, i) => JSON.parse(i === 0 ? `${t}}` : t));
    expect(measured).toEqual({ minGain: 0.045, accuracy: 0.753472, samples: 12, tiny: 1.23457e-7 });
    expect(exact).toEqual({ scale: 0.023528477177023888 });
  });
});
