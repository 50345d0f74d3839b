/**
 * The one HTTP client of the UI: wraps fetch, parses JSON, and turns every non-OK response (and
 * every network failure) into an {@link ApiError} carrying the server's code, message and field.
 */
import type { EnginesResponse, ErrorBody, Job, LossList, SnapshotList } from './types';

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the server could not be reached at all. */
    readonly status: number,
    /** The server's machine-readable code (`invalid`, `not_found`, …) or `network` / `http_<status>`. */
    readonly code: string,
    message: string,
    /** The request field the error is about (`content`, `style`, `image_size`, …), when known. */
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type FetchFn = typeof fetch;

/** Build an ApiError from a failed response, preferring the server's JSON error body. */
export async function errorFrom(response: Response): Promise<ApiError> {
  // Not JSON (a proxy's HTML page, an empty body): fall back to the status line below.
  const body = (await response.json().catch(() => null)) as Partial<ErrorBody> | null;
  const error = body?.error;
  if (typeof error === 'object' && error !== null && typeof error.message === 'string') {
    const code = error.code || `http_${response.status}`;
    return new ApiError(response.status, code, error.message, error.field ?? null);
  }
  const text = response.statusText || 'request failed';
  return new ApiError(response.status, `http_${response.status}`, `${response.status} ${text}`);
}

/** Where the UI keeps its API key (set once with `?api_key=…` in the page's URL). */
export const KEY_STORAGE = 'stylequeue.apiKey';

/**
 * The API key the UI sends, when the server has access control on: taken from the page URL's
 * `api_key` parameter (then removed from the address bar and remembered), else the remembered one.
 */
export function loadApiKey(win: Window | undefined = globalThis.window): string {
  if (!win) return '';
  const url = new URL(win.location.href);
  const given = url.searchParams.get('api_key');
  if (given !== null) {
    win.localStorage.setItem(KEY_STORAGE, given);
    url.searchParams.delete('api_key');
    win.history.replaceState(win.history.state, '', url.toString());
    return given;
  }
  return win.localStorage.getItem(KEY_STORAGE) ?? '';
}

export class Api {
  private readonly base: string;
  private readonly fetchFn: FetchFn;
  /** The API key ('' = none): sent as `Authorization: Bearer`, and on image links as `access_token`. */
  apiKey: string;

  /** `base` prefixes every path ('' = same origin); `fetchFn` is injectable for tests. */
  constructor(base = '', fetchFn: FetchFn = (...args) => globalThis.fetch(...args), apiKey = '') {
    this.base = base.replace(/\/$/, '');
    this.fetchFn = fetchFn;
    this.apiKey = apiKey;
  }

  private resolve(path: string): string {
    return /^https?:\/\//.test(path) ? path : `${this.base}${path}`;
  }

  /**
   * An absolute-path URL the server returned (job links) or a path of ours, under `base`. With a
   * key, API paths carry it as `access_token`: an `<img>` or a download link cannot send headers.
   */
  url(path: string): string {
    const full = this.resolve(path);
    if (!this.apiKey || !path.startsWith('/api/')) return full;
    return `${full}${full.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(this.apiKey)}`;
  }

  private async request<T>(path: string, init?: RequestInit): Promise<T> {
    let response: Response;
    const auth: Record<string, string> = this.apiKey ? { Authorization: `Bearer ${this.apiKey}` } : {};
    try {
      const headers = { Accept: 'application/json', ...auth };
      response = await this.fetchFn(this.resolve(path), { ...init, headers });
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new ApiError(0, 'network', `cannot reach the server (${reason})`);
    }
    if (!response.ok) throw await errorFrom(response);
    return (await response.json()) as T;
  }

  engines(): Promise<EnginesResponse> {
    return this.request('/api/v1/engines');
  }

  /** POST a job: `form` holds the files (`content`, `style` ×n, `init_image`), `mode` and params. */
  submit(form: FormData): Promise<Job> {
    return this.request('/api/v1/jobs', { method: 'POST', body: form });
  }

  job(id: string): Promise<Job> {
    return this.request(`/api/v1/jobs/${encodeURIComponent(id)}`);
  }

  snapshots(job: Job): Promise<SnapshotList> {
    return this.request(job.links.snapshots);
  }

  losses(job: Job): Promise<LossList> {
    return this.request(job.links.losses);
  }

  cancel(id: string): Promise<Job> {
    return this.request(`/api/v1/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }
}

/** The client the app uses: same origin as the page (the API server serves the UI), with its key. */
export const api = new Api('', undefined, loadApiKey());
