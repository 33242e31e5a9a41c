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
  sources: SourceStatusJson[];
  [key: string]: unknown;
}

export interface HeadJson {
  version: number | null;
  kind: string | null;
  labels: string[];
  accuracy: number | null;
  [key: string]: unknown;
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
