// Progress for long work: a live bar on a terminal, a line every 10 % in logs, nothing with --json
// unless stderr is a terminal (JSON goes to stdout, so the bar never mixes with it).

import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, extra?: string): void;
  stop(): void;
}

export function startProgress(label: string, total: number, options: { quiet?: boolean } = {}): Progress {
  if (options.quiet || total === 0) return { update() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: `${label} [{bar}] {value}/{total} {percentage}% | {rate}/s | eta {eta}s {extra}`,
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    bar.start(total, 0, { rate: '0', extra: '' });
    return {
      update(done, extra = '') {
        const rate = (done / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1);
        bar.update(done, { rate, extra });
      },
      stop() {
        bar.stop();
      },
    };
  }
  let nextReport = 0.1;
  return {
    update(done, extra = '') {
      if (done / total >= nextReport || done === total) {
        process.stderr.write(`${label}: ${done}/${total} ${extra}\n`);
        nextReport = Math.floor((done / total) * 10 + 1) / 10;
      }
    },
    stop() {},
  };
}
