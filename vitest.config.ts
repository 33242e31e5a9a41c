// Two projects. unit: test/unit/, in this process only (no child processes, brokers, browsers or sshd;
// test/support/unit-guard.ts makes starting a process fail), the whole of it well under a minute:
// `npx vitest run --project unit`. e2e: every other test file, test/e2e/ (a file put anywhere else
// under test/ runs here too, so none is lost); before it starts, test/support/system-check.ts stops the
// run with one line if a system package from system-packages.txt is missing. test/support/ is shared.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], setupFiles: ['test/support/unit-guard.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**', '**/node_modules/**'],
          globalSetup: ['test/support/system-check.ts'],
        },
      },
    ],
  },
});
