// The seam between where photos come from and the agent: every source hands samples to one sink and
// reports its health the same way. A failing source retries with backoff and never stops the agent.

import { EdgetuneError } from '../../core/errors.js';
import { reservedLabelProblem } from '../../core/labels.js';

export class SourceError extends EdgetuneError {}

export interface IncomingSample {
  bytes: Buffer;
  label: string | null;
  origin: string;
}

/** Stores a sample and resolves with its id (undefined when the queue dropped it); rejects when the
 * sample is refused (bad label, store failure). */
export type SampleSink = (sample: IncomingSample) => Promise<string | undefined>;

export interface SourceStatus {
  name: string;
  produced: number;
  failures: number;
  lastError: string | null;
  /** When the next attempt after a failure is due (ms since epoch), null when healthy. */
  retryAt: number | null;
}

export interface SampleSource {
  readonly name: string;
  /** True when the source can wait for the agent (files stay on disk); false when frames are live and
   * get dropped by the queue's policy instead. */
  readonly canWait: boolean;
  start(sink: SampleSink): void;
  stop(): Promise<void>;
  status(): SourceStatus;
}

/** A source that can also be asked for one sample now (a camera's capture button). */
export interface TriggerSource extends SampleSource {
  /** Resolves with the stored sample's id, undefined when the queue dropped it. */
  trigger(): Promise<string | undefined>;
}

const MAX_LABEL = 64;

/** Labels come from folder names and HTTP requests: they must never become paths or control text. */
export function validateLabel(label: string, where: string): string {
  const trimmed = label.trim();
  const problem =
    trimmed.length === 0
      ? 'is empty'
      : trimmed.length > MAX_LABEL
        ? `is longer than ${MAX_LABEL} characters`
        : /[/\\]/.test(trimmed) || trimmed === '.' || trimmed.includes('..')
          ? 'contains path characters (/, \\ or ..)'
          : /[\u0000-\u001f\u007f-\u009f]/.test(trimmed)
            ? 'contains control characters'
            : reservedLabelProblem(trimmed);
  if (problem) throw new SourceError('LABEL_INVALID', `${where}: label ${JSON.stringify(label.slice(0, 80))} ${problem}`);
  return trimmed;
}
