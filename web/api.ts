// How a page talks to its server: the token taken from the address bar once, and JSON requests that
// turn an error reply into an Error carrying the server's message.

/**
 * The API token from ?token=..., kept in sessionStorage and removed from the address bar (and so from
 * history, bookmarks and screenshots) once read.
 */
export function takeToken(storageKey: string): string {
  const params = new URLSearchParams(location.search);
  const fromUrl = params.get('token');
  if (fromUrl !== null) {
    sessionStorage.setItem(storageKey, fromUrl);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
  return fromUrl ?? sessionStorage.getItem(storageKey) ?? '';
}

export interface ApiClientOptions {
  token: string;
  /** The message for a 401, when the server's own would not tell a person what to do. */
  unauthorized?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  get token(): string {
    return this.options.token;
  }

  /** Sends `body` as JSON, or as-is when it is a Blob (an uploaded photo). */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let payload: BodyInit | undefined;
    if (body instanceof Blob) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(path, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
    const data = (await res.json().catch(() => ({}))) as T & { error?: string; code?: string };
    if (res.status === 401 && this.options.unauthorized) throw new ApiError(401, data.code, this.options.unauthorized);
    if (!res.ok) throw new ApiError(res.status, data.code, data.error ?? `${res.status} ${res.statusText}`);
    return data;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }
}
