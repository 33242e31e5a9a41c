// How to start Node for the agent on a small board. Measured with `npm run bench -- agent` (2 workers,
// default backbone, a camera flood): with Node's and glibc's defaults the agent sits at ~270 MB RSS, most
// of it freed memory glibc keeps (a 112 MB fragmented brk heap) and V8's young generation. A 1 MB
// semi-space, a 128 MB old-space cap, two malloc arenas, and mmap for allocations over 64 KB (returned
// to the system on free, instead of a dynamic threshold that creeps up) bring it to ~180 MB.
// The bench, the systemd unit and the bin script's shebang all use these.

export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--max-old-space-size=128'];

export const AGENT_ENV: Readonly<Record<string, string>> = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '65536',
  MALLOC_TRIM_THRESHOLD_: '65536',
};
