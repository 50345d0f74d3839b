import { fireEvent, render, screen } from '@testing-library/svelte';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadHistory, upsertHistory } from '../lib/history';
import { job, json, scriptedFetch } from '../test-helpers';
import HistoryPage from './HistoryPage.svelte';

beforeEach(() => localStorage.clear());
afterEach(() => vi.unstubAllGlobals());

describe('HistoryPage', () => {
  it('lists this browser’s jobs with thumbnails and links, and refreshes unfinished ones', async () => {
    upsertHistory({ id: 'old-done', mode: 'blend', status: 'succeeded', content_thumb: 'data:image/jpeg;base64,AA' });
    upsertHistory({ id: 'was-running', mode: 'gatys', status: 'running' });
    const { fetchFn, calls } = scriptedFetch({
      'GET /api/v1/jobs/was-running': json(job({ id: 'was-running', status: 'succeeded' })),
    });
    vi.stubGlobal('fetch', fetchFn);
    render(HistoryPage);

    const links = screen.getAllByRole('link').filter((a) => a.getAttribute('href')?.startsWith('#/jobs/'));
    expect(links.map((a) => a.getAttribute('href'))).toEqual(['#/jobs/was-running', '#/jobs/old-done']);
    expect(links[1].querySelector('img')).toHaveAttribute('src', 'data:image/jpeg;base64,AA');
    await vi.waitFor(() => expect(loadHistory()[0].status).toBe('succeeded'));
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/jobs/was-running']); // finished jobs are not asked again
  });

  it('forgets one job', async () => {
    upsertHistory({ id: 'abcdef123', mode: 'blend', status: 'succeeded' });
    render(HistoryPage);
    await fireEvent.click(screen.getByRole('button', { name: 'Forget job abcdef12' }));
    expect(screen.getByText(/No jobs yet/)).toBeInTheDocument();
    expect(loadHistory()).toEqual([]);
  });
});
