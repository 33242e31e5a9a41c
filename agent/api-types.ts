// The JSON the agent's HTTP API returns, as its labelling page (agent/page/) reads it. Types only: the
// server is checked against them (agent/http.ts) and the page imports them with `import type`.

export interface SampleJson {
  id: string;
  createdAt: number;
  origin: string;
  label: string | null;
  split: 'train' | 'holdout';
  bytes: number;
  hasImage: boolean;
  status: 'ok' | 'quarantined';
  error: string | null;
  prediction: string | null;
  predictionScore: number | null;
  /** The head version that made the prediction. */
  predictionHead: number | null;
  /** The head called it unknown (null: not predicted yet). */
  predictionUnknown: boolean | null;
  /** Cosine distance to the nearest class mean (null: a head without an open set). */
  predictionDistance: number | null;
}

export interface SourceStatusJson {
  /** "camera:...", "inbox:...": the page offers a capture button when a camera is configured. */
  name: string;
}

export interface HealthJson {
  device: string;
  headVersion: number | null;
  samples: number;
  labelled: number;
  /** `full`: labelled samples fill the retention limits, new samples are refused. */
  store: { full: boolean; samples: number; bytes: number; maxSamples: number | null; maxBytes: number | null };
  /** Unlabelled samples waiting for a person, and how many of them the head called unknown. */
  waiting: number;
  waitingUnknown: number;
  sources: SourceStatusJson[];
  [key: string]: unknown;
}

export interface HeadJson {
  version: number | null;
  kind: string | null;
  labels: string[];
  accuracy: number | null;
  /** The head's calibrated unknown: distances above `threshold` answer unknown. */
  openSet: { score: string; threshold: number; unknownRate: number; samples: number } | null;
  /** A probability threshold overriding it (null: none). */
  unknownThreshold: number | null;
  [key: string]: unknown;
}

export interface NewClassJson {
  label: string;
  samples: SampleJson[];
}

export interface ClassCountJson {
  label: string;
  count: number;
}

export interface SamplesJson {
  samples: SampleJson[];
}

export interface ClassesJson {
  classes: ClassCountJson[];
}

export interface TrainJson {
  kept: boolean;
  version: number | null;
  accuracy: number | null;
  reason?: string;
  [key: string]: unknown;
}

export interface SampleReplyJson {
  sample: SampleJson;
}

export interface ErrorJson {
  error: string;
  code: string;
}

/** GET /api/browse: one page of samples, pinned to `asOf` so later pages do not shift. */
export interface BrowseJson {
  samples: SampleJson[];
  /** Samples the filter finds as of `asOf`. */
  total: number;
  asOf: number;
  /** Samples created after `asOf` that the filter would find. */
  newer: number;
  counts: FilterCountsJson;
  headVersion: number | null;
}

export interface FilterCountsJson {
  all: number;
  unlabelled: number;
  labelled: number;
  unknown: number;
  quarantined: number;
  label: Record<string, number>;
  predicted: Record<string, number>;
}

/** GET /api/samples/:id/scores: the current head's probability for every class. */
export interface ScoresJson {
  headVersion: number | null;
  scores: { label: string; score: number }[];
}

/** POST /api/samples/labels {ids, label}. */
export interface BulkLabelJson {
  labelled: number;
}

/** Server-sent events on /api/events. */
export interface AgentEventsJson {
  hello: { device: string; headVersion: number | null };
  /** A new sample is stored and embedded (with the current head's prediction). */
  sample: { id: string; createdAt: number };
  label: { ids: string[]; label: string | null };
  deleted: { id: string };
  head: { version: number | null };
}
