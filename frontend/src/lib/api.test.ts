import { describe, expect, it } from 'vitest';
import { job, json, scriptedFetch } from '../test-helpers';
import { Api, ApiError, loadApiKey } from './api';

describe('Api', () => {
  it('returns parsed JSON for OK responses', async () => {
    const { fetchFn, calls } = scriptedFetch({ 'GET /api/v1/jobs/abc': json(job({ id: 'abc' })) });
    const result = await new Api('', fetchFn).job('abc');
    expect(result.id).toBe('abc');
    expect(calls).toHaveLength(1);
  });

  it('turns a JSON error body into an ApiError with code, message and field', async () => {
    const body = { error: { code: 'invalid', message: 'must be at least 16, got 8', field: 'image_size' } };
    const { fetchFn } = scriptedFetch({ 'POST /api/v1/jobs': json(body, 422) });
    const error = await new Api('', fetchFn).submit(new FormData()).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, code: 'invalid', field: 'image_size', message: 'must be at least 16, got 8' });
  });

  it('falls back to the status line when the error body is not JSON', async () => {
    const html = new Response('<h1>Bad gateway</h1>', { status: 502, statusText: 'Bad Gateway' });
    const { fetchFn } = scriptedFetch({ 'GET /api/v1/engines': html });
    const error = await new Api('', fetchFn).engines().catch((e) => e);
    expect(error).toMatchObject({ status: 502, code: 'http_502', field: null, message: '502 Bad Gateway' });
  });

  it('reports an unreachable server as a network ApiError', async () => {
    const failing = (async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    const error = await new Api('', failing).engines().catch((e) => e);
    expect(error).toMatchObject({ status: 0, code: 'network' });
    expect(error.message).toContain('Failed to fetch');
  });

  it('sends cancel as DELETE and uploads as multipart POST', async () => {
    const { fetchFn, calls } = scriptedFetch({
      'DELETE /api/v1/jobs/abc': json(job({ id: 'abc', status: 'cancelled' })),
      'POST /api/v1/jobs': json(job({ id: 'new' }), 202),
    });
    const api = new Api('', fetchFn);
    expect((await api.cancel('abc')).status).toBe('cancelled');
    const form = new FormData();
    form.append('mode', 'blend');
    expect((await api.submit(form)).id).toBe('new');
    expect(calls.map((c) => c.method)).toEqual(['DELETE', 'POST']);
    expect(calls[1].body).toBe(form);
  });

  it('follows the job links for snapshots and prefixes its base', async () => {
    const j = job({ id: 'abc' });
    const { fetchFn, calls } = scriptedFetch({
      'GET http://h:1/api/v1/jobs/abc/snapshots': json({ job_id: 'abc', snapshots: [{ iteration: 2, url: '/x' }] }),
    });
    const api = new Api('http://h:1/', fetchFn);
    expect((await api.snapshots(j)).snapshots[0].iteration).toBe(2);
    expect(calls[0].url).toBe('http://h:1/api/v1/jobs/abc/snapshots');
    expect(api.url('https://cdn.example/x.png')).toBe('https://cdn.example/x.png');
  });
});

describe('Api with an API key', () => {
  it('sends the key as a bearer token and puts it on API links only', async () => {
    const sent: Headers[] = [];
    const fetchFn = (async (_input: RequestInfo | URL, init?: RequestInit) => {
      sent.push(new Headers(init?.headers));
      return json(job({ id: 'abc' }));
    }) as typeof fetch;
    const client = new Api('', fetchFn, 's3cret key');
    await client.job('abc');
    expect(sent[0].get('Authorization')).toBe('Bearer s3cret key');
    expect(client.url('/api/v1/jobs/abc/result')).toBe('/api/v1/jobs/abc/result?access_token=s3cret%20key');
    expect(client.url('/api/v1/jobs/abc/result?presigned=true')).toContain('&access_token=');
    expect(client.url('/favicon.svg')).toBe('/favicon.svg');
    expect(new Api('', fetchFn).url('/api/v1/jobs/abc/result')).toBe('/api/v1/jobs/abc/result');
  });

  it('takes the key from the page URL once, then remembers it', () => {
    window.localStorage.clear();
    window.history.replaceState(null, '', '/jobs/abc?api_key=from-url&x=1');
    expect(loadApiKey(window)).toBe('from-url');
    expect(window.location.search).toBe('?x=1');
    expect(loadApiKey(window)).toBe('from-url');
    window.localStorage.clear();
    expect(loadApiKey(window)).toBe('');
  });
});
