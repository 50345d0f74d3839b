/** Shared test data and a scripted fetch that answers with real Response objects. */
import fixture from './fixtures/engines.json';
import type { EnginesResponse, Job } from './lib/types';

export function engines(): EnginesResponse {
  return structuredClone(fixture) as EnginesResponse;
}

export function engine(mode: string) {
  const found = engines().engines.find((e) => e.mode === mode);
  if (!found) throw new Error(`fixture has no engine ${mode}`);
  return found;
}

export function job(overrides: Partial<Job> = {}): Job {
  const id = overrides.id ?? '0b7c1a52-3f3e-4a8e-9d55-6a0f6a1f2c11';
  const base: Job = {
    id,
    mode: 'gatys',
    params: { image_size: 32, total_iterations: 10 },
    status: 'queued',
    attempt: 0,
    progress: { iteration: 0, total: 0 },
    submitted_at: '2026-11-21T12:00:00.000Z',
    started_at: null,
    finished_at: null,
    error: null,
    snapshots: [],
    engine: {},
    resumed_from: null,
    links: {
      self: `/api/v1/jobs/${id}`,
      result: `/api/v1/jobs/${id}/result`,
      snapshots: `/api/v1/jobs/${id}/snapshots`,
      zip: `/api/v1/jobs/${id}/snapshots.zip`,
      losses: `/api/v1/jobs/${id}/losses`,
      content: `/api/v1/jobs/${id}/inputs/content`,
      styles: [`/api/v1/jobs/${id}/inputs/style-0`],
    },
    queue_position: null,
  };
  return { ...base, ...overrides } as Job;
}

export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

export interface Call {
  url: string;
  method: string;
  body: BodyInit | null | undefined;
}

/** A fetch answering by route: `routes` maps "METHOD path" to a response (or a function making one). */
export function scriptedFetch(routes: Record<string, Response | ((call: Call) => Response)>) {
  const calls: Call[] = [];
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit) => {
    const call = { url: String(input), method: init?.method ?? 'GET', body: init?.body };
    calls.push(call);
    const route = routes[`${call.method} ${call.url}`];
    if (!route) return json({ error: { code: 'not_found', message: `no route ${call.url}`, field: null } }, 404);
    return typeof route === 'function' ? route(call) : route.clone();
  };
  return { fetchFn: fetchFn as typeof fetch, calls };
}
