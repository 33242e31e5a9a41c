// How to start Node for the agent on a small board. Measured with `npm run bench -- agent` (2 workers,
// default backbone): Node's defaults reach ~280 MB RSS after a few hundred photos; a 1 MB young-generation
// semi-space, a 128 MB old-space cap and two glibc malloc arenas keep it under 200 MB at the same speed.
// The bench, the systemd unit and the bin script's shebang all use these.

export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--max-old-space-size=128'];

export const AGENT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
