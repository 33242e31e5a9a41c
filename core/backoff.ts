// Retry pacing shared by sample sources and the broker link.

/** Exponential backoff with full jitter: a fleet restarting together does not retry in lockstep. */
export function backoffDelay(failures: number, baseMs = 1000, maxMs = 60_000, random = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(cap / 2 + (random() * cap) / 2);
}
