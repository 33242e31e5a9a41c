// Worker threads inherit the parent's Node flags, but refuse --input-type (from `node -e`) for a file
// entry point and per-isolate heap flags (the agent's --max-*-space-size, process-wide anyway).

export function workerExecArgv(): string[] {
  return process.execArgv.filter((a) => !a.startsWith('--input-type') && !/^--max-(semi|old)-space-size/.test(a));
}
