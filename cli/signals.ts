// Long-running verbs (console, demo) run until Ctrl-C or SIGTERM, then stop cleanly.

/** Resolves once SIGINT or SIGTERM came and `stop` has finished (or failed). */
export function runUntilSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise<void>((done) => {
    const onSignal = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      stop().then(done, done);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
