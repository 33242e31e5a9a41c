// The order in which unlabelled samples are most worth a person's time: what the head calls unknown
// first (farthest from every class first), then what it is least sure of, then samples it has not
// answered yet. Within each tier the samples take turns by group (predicted class and hour), so a burst
// of near-identical frames from one moment or one class does not fill the first page.

/** What the order reads of a sample. */
export interface Rankable {
  id: string;
  createdAt: number;
  prediction: string | null;
  predictionScore: number | null;
  predictionUnknown: boolean | null;
  predictionDistance: number | null;
}

/** Samples taken within one hour count as one moment. */
const HOUR_MS = 3_600_000;

function tier(s: Rankable): number {
  if (s.predictionUnknown === true) return 0;
  if (s.prediction !== null && s.predictionScore !== null) return 1;
  return 2;
}

/** Lower is more worth labelling, within a tier. */
function urgency(s: Rankable, t: number): number {
  if (t === 0) return -(s.predictionDistance ?? 0);
  if (t === 1) return s.predictionScore!;
  return -s.createdAt;
}

function group(s: Rankable): string {
  return `${s.prediction ?? ''}|${Math.floor(s.createdAt / HOUR_MS)}`;
}

/** Unlabelled samples, most worth labelling first. */
export function orderByWorth<T extends Rankable>(samples: T[]): T[] {
  const ranked = samples.map((s) => ({ s, tier: tier(s), urgency: 0, turn: 0 }));
  for (const r of ranked) r.urgency = urgency(r.s, r.tier);
  ranked.sort((a, b) => a.tier - b.tier || a.urgency - b.urgency || (a.s.id < b.s.id ? -1 : 1));
  const turns = new Map<string, number>();
  for (const r of ranked) {
    const key = `${r.tier}|${group(r.s)}`;
    r.turn = turns.get(key) ?? 0;
    turns.set(key, r.turn + 1);
  }
  // Round robin: every group's best sample, then every group's second best, and so on, within a tier.
  ranked.sort((a, b) => a.tier - b.tier || a.turn - b.turn || a.urgency - b.urgency || (a.s.id < b.s.id ? -1 : 1));
  return ranked.map((r) => r.s);
}
