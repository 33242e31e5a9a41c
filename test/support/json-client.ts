// A JSON client for the agent's HTTP API as the tests call it: bytes go as the body, anything else as JSON.

export type JsonCall = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => Promise<{ status: number; json: T }>;

/** Calls on `base()` (read per call: the URL is known only once the server listens). */
export function jsonClient(base: () => string): JsonCall {
  return async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base()}${path}`, {
      method,
      ...(body instanceof Uint8Array
        ? { body: body as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/octet-stream' } }
        : body !== undefined
          ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }
          : {}),
    });
    return { status: res.status, json: (await res.json()) as T };
  };
}
