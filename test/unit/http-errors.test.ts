// How the HTTP servers answer a thrown error: the catalogue's status for its code; anything the server
// did not expect is a 500, and every 5xx is logged with its stack.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentApi, startHttpServer } from '../../agent/http.js';
import { createLogger } from '../../core/log.js';
import type { RunningServer } from '../../core/json-api.js';
import { SampleError } from '../../runtime/samples/store.js';
import { SourceError } from '../../devices/sources/source.js';

const SAMPLE = 'a'.repeat(64);
let server: RunningServer;
const logs: Record<string, unknown>[] = [];

// An agent API whose store is damaged and whose label check refuses: only the methods these requests reach.
const api = {
  listSamples: () => {
    throw new SampleError('STORE_CORRUPT', '/data/samples.db: cannot open the sample database: database disk image is malformed');
  },
  setLabel: (_id: string, label: string | null) => {
    throw new SourceError('LABEL_INVALID', `label ${JSON.stringify(label)} contains "/"`);
  },
  getSample: () => {
    throw new TypeError("Cannot read properties of undefined (reading 'hash')");
  },
} as unknown as AgentApi;

beforeAll(async () => {
  const log = createLogger('info', {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  server = await startHttpServer(api, { host: '127.0.0.1', port: 0, maxUploadBytes: 1024 }, log);
});
afterAll(() => server.close());

async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(server.url + path, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: response.status, body: (await response.json()) as { code: string; error: string } };
}

describe('HTTP error replies', () => {
  it('answers a damaged store with a 500 and logs it with its stack', async () => {
    logs.length = 0;
    expect(await call('GET', '/api/samples')).toEqual({
      status: 500,
      body: { code: 'STORE_CORRUPT', error: expect.stringContaining('samples.db: cannot open the sample database') },
    });
    expect(logs).toEqual([
      expect.objectContaining({
        level: 'error',
        msg: 'http request failed',
        method: 'GET',
        url: '/api/samples',
        status: 500,
        code: 'STORE_CORRUPT',
        stack: expect.stringMatching(/^SampleError: .*samples\.db[\s\S]*\n\s+at /),
      }),
    ]);
  });

  it('answers an error without a code with a 500 INTERNAL and logs it', async () => {
    logs.length = 0;
    expect(await call('GET', `/api/samples/${SAMPLE}`)).toMatchObject({ status: 500, body: { code: 'INTERNAL' } });
    expect(logs).toEqual([expect.objectContaining({ code: 'INTERNAL', stack: expect.stringMatching(/^TypeError: /) })]);
  });

  it("keeps the caller's mistakes 4xx and does not log them", async () => {
    logs.length = 0;
    expect(await call('PUT', `/api/samples/${SAMPLE}/label`, { label: 'a/b' })).toMatchObject({
      status: 400,
      body: { code: 'LABEL_INVALID' },
    });
    expect(await call('PUT', `/api/samples/${SAMPLE}/label`, { label: 7 })).toMatchObject({ status: 400, body: { code: 'LABEL_INVALID' } });
    expect(await call('GET', '/api/nothing')).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
    expect(logs).toEqual([]);
  });
});
