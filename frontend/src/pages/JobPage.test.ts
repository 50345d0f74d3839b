import { render, screen } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { findHistory } from '../lib/history';
import { engines, job, json, scriptedFetch } from '../test-helpers';
import JobPage from './JobPage.svelte';

const ID = 'job-9';
const base = `/api/v1/jobs/${ID}`;

/** Answers GET job with each status in turn (the last one repeats). */
function jobSequence(...states: Parameters<typeof job>[0][]) {
  let i = 0;
  return () => json(job({ id: ID, ...states[Math.min(i++, states.length - 1)] }));
}

beforeEach(() => localStorage.clear());
afterEach(() => vi.unstubAllGlobals());

describe('JobPage', () => {
  it('polls a running job until it succeeds, then offers the downloads', async () => {
    const snapshots = [2, 4].map((iteration) => ({ iteration, url: `${base}/snapshots/${iteration}` }));
    const losses = [2, 4].map((iteration) => ({ iteration, content: 1, style: 10, tv: 0.1, total: 11.1 }));
    const { fetchFn, calls } = scriptedFetch({
      [`GET ${base}`]: jobSequence(
        { status: 'running', progress: { iteration: 4, total: 10 }, engine: { random_weights: true } },
        { status: 'succeeded', progress: { iteration: 10, total: 10 }, snapshots: [2, 4] },
      ),
      [`GET ${base}/snapshots`]: json({ job_id: ID, snapshots }),
      [`GET ${base}/losses`]: json({ job_id: ID, losses }),
    });
    vi.stubGlobal('fetch', fetchFn);
    render(JobPage, { id: ID, engines: engines().engines });

    expect(await screen.findByTestId('iterations')).toHaveTextContent('iteration 4 / 10 · 40%');
    expect(screen.getByText(/random weights/)).toBeInTheDocument();
    expect((await screen.findByTestId('filmstrip')).querySelectorAll('li')).toHaveLength(2);
    expect(await screen.findByTestId('loss-chart')).toBeInTheDocument();

    expect(await screen.findByTestId('download-result', {}, { timeout: 3000 })).toHaveAttribute('href', `${base}/result`);
    expect(screen.getByTestId('download-zip')).toHaveAttribute('href', `${base}/snapshots.zip`);
    // The comparison's "before" is the server's stored content input (no local history needed).
    expect(screen.getByRole('img', { name: 'Original, before styling' })).toHaveAttribute('src', `${base}/inputs/content`);
    expect(screen.getByTestId('job-status')).toHaveTextContent('Done');
    await vi.waitFor(() => expect(findHistory(ID)?.status).toBe('succeeded'));

    const polls = calls.filter((c) => c.url === base).length;
    await new Promise((r) => setTimeout(r, 1300));
    expect(calls.filter((c) => c.url === base).length).toBe(polls); // stopped once terminal
  });

  it('cancels a queued job', async () => {
    const { fetchFn, calls } = scriptedFetch({
      [`GET ${base}`]: jobSequence({ status: 'queued', queue_position: 0 }),
      [`DELETE ${base}`]: json(job({ id: ID, status: 'cancelled' })),
    });
    vi.stubGlobal('fetch', fetchFn);
    render(JobPage, { id: ID, engines: engines().engines });
    expect(await screen.findByTestId('queue-position')).toHaveTextContent('next up');
    await userEvent.click(screen.getByRole('button', { name: 'Cancel job' }));
    expect(await screen.findByText('Cancelled')).toBeInTheDocument();
    expect(calls.some((c) => c.method === 'DELETE')).toBe(true);
    expect(screen.queryByRole('button', { name: 'Cancel job' })).toBeNull();
  });

  it('explains a failed job in plain words', async () => {
    const error = { code: 'engine_unavailable', message: 'blend model artifact not installed' };
    const { fetchFn } = scriptedFetch({ [`GET ${base}`]: jobSequence({ status: 'failed', error }) });
    vi.stubGlobal('fetch', fetchFn);
    render(JobPage, { id: ID, engines: engines().engines });
    expect(await screen.findByTestId('job-error')).toHaveTextContent(
      'The engine could not run: blend model artifact not installed',
    );
  });

  it('says where a retried Gatys job resumed', async () => {
    const resumed = { status: 'running' as const, attempt: 2, resumed_from: { attempt: 1, iteration: 150, stage: '1/2' } };
    const { fetchFn } = scriptedFetch({
      [`GET ${base}`]: jobSequence(resumed),
      [`GET ${base}/snapshots`]: json({ job_id: ID, snapshots: [] }),
      [`GET ${base}/losses`]: json({ job_id: ID, losses: [] }),
    });
    vi.stubGlobal('fetch', fetchFn);
    render(JobPage, { id: ID, engines: engines().engines });
    expect(await screen.findByText(/resumed at iteration 150 of attempt 1/)).toBeInTheDocument();
  });

  it('says when the job does not exist', async () => {
    vi.stubGlobal('fetch', scriptedFetch({}).fetchFn);
    render(JobPage, { id: ID, engines: engines().engines });
    expect(await screen.findByText('Job not found')).toBeInTheDocument();
  });
});
