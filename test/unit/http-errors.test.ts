// How the HTTP servers (the agent's and the console's both use core/json-api.ts listen) answer a thrown
// error: the catalogue's status for its code; anything the server did not expect is a 500, and every
// 5xx is logged with its stack.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.js';
import { HttpError, type RunningServer, listen, readJson } from '../../core/json-api.js';
import { SampleError } from '../../runtime/samples/store.js';
import { validateLabel } from '../../devices/sources/source.js';

let server: RunningServer;
const logs: Record<string, unknown>[] = [];

// Routes that fail the way the agent's do: a damaged sample store, a label refused by the sources' own
// check, a bug, and the HTTP layer's refusals.
beforeAll(async () => {
  const log = createLogger('info', {}, (line) => logs.push(JSON.parse(line) as Record<string, unknown>));
  server = await listen(
    async (req) => {
      if (req.url === '/api/samples')
        throw new SampleError('STORE_CORRUPT', '/data/samples.db: cannot open the sample database: database disk image is malformed');
      if (req.url === '/api/bug') throw new TypeError("Cannot read properties of undefined (reading 'hash')");
      if (req.url === '/api/label') {
        const body = await readJson(req);
        if (typeof body.label !== 'string') throw new HttpError('LABEL_INVALID', 'field "label" must be a string or null');
        validateLabel(body.label, 'label');
      }
      throw new HttpError('NOT_FOUND', `no route ${req.method} ${req.url}`);
    },
    { host: '127.0.0.1', port: 0 },
    (fields) => log.error('http request failed', fields),
  );
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
    expect(await call('GET', '/api/bug')).toMatchObject({ status: 500, body: { code: 'INTERNAL' } });
    expect(logs).toEqual([expect.objectContaining({ code: 'INTERNAL', stack: expect.stringMatching(/^TypeError: /) })]);
  });

  it("keeps the caller's mistakes 4xx and does not log them", async () => {
    logs.length = 0;
    expect(await call('PUT', '/api/label', { label: 'a/b' })).toMatchObject({
      status: 400,
      body: { code: 'LABEL_INVALID' },
    });
    expect(await call('PUT', '/api/label', { label: 7 })).toMatchObject({ status: 400, body: { code: 'LABEL_INVALID' } });
    expect(await call('GET', '/api/nothing')).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
    expect(logs).toEqual([]);
  });
});
