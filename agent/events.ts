// What happens on the agent that a page shows live: new samples, labels, deletions, head changes.
// The HTTP API streams these to the labelling page as Server-Sent Events (agent/page-api.ts).

import { EventEmitter } from 'node:events';
import type { AgentEventsJson } from './api-types.js';

type EventMap = { [K in Exclude<keyof AgentEventsJson, 'hello'>]: [AgentEventsJson[K]] };

export class AgentEvents extends EventEmitter<EventMap> {}

export const AGENT_EVENT_NAMES = ['sample', 'label', 'deleted', 'head'] as const satisfies readonly (keyof EventMap)[];
