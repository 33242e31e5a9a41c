// Set-up file of the unit project: a unit test that starts a process fails at once, naming the call and
// where the test belongs. Brokers, browsers and sshd are processes too.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

const STARTERS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;

for (const name of STARTERS) {
  (childProcess as unknown as Record<string, unknown>)[name] = () => {
    throw new Error(`child_process.${name}: unit tests start no processes; move this test file to test/e2e/`);
  };
}
// `import { spawn } from 'node:child_process'` reads the patched functions too.
syncBuiltinESMExports();
