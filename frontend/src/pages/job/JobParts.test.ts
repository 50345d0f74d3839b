import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { job } from '../../test-helpers';
import Filmstrip from './Filmstrip.svelte';
import LossChart from './LossChart.svelte';
import ProgressPanel from './ProgressPanel.svelte';

const snaps = [2, 4, 6].map((iteration) => ({ iteration, url: `/api/v1/jobs/j/snapshots/${iteration}` }));

describe('ProgressPanel', () => {
  it('shows iteration/total, percent and ETA while running', () => {
    render(ProgressPanel, { job: job({ status: 'running', progress: { iteration: 5, total: 20 } }), secondsLeft: 75 });
    expect(screen.getByTestId('iterations')).toHaveTextContent('iteration 5 / 20 · 25%');
    expect(screen.getByText('About 1 min 15 s left')).toBeInTheDocument();
  });

  it('shows the queue position while waiting', () => {
    render(ProgressPanel, { job: job({ status: 'queued', queue_position: 2 }), secondsLeft: null });
    expect(screen.getByTestId('queue-position')).toHaveTextContent('position 3');
  });
});

describe('Filmstrip', () => {
  it('follows the newest snapshot and lets the user scrub back', async () => {
    render(Filmstrip, { snapshots: snaps, live: true, src: (u: string) => u });
    expect(screen.getByTestId('snapshot-main')).toHaveAttribute('alt', 'Snapshot at iteration 6');
    await fireEvent.input(screen.getByRole('slider'), { target: { value: '0' } });
    expect(screen.getByTestId('snapshot-main')).toHaveAttribute('alt', 'Snapshot at iteration 2');
    await fireEvent.click(screen.getByRole('button', { name: 'Follow live' }));
    expect(screen.getByTestId('snapshot-main')).toHaveAttribute('alt', 'Snapshot at iteration 6');
  });

  it('selects a snapshot from the strip by button', async () => {
    render(Filmstrip, { snapshots: snaps, live: false, src: (u: string) => u });
    await fireEvent.click(screen.getByRole('button', { name: 'Show iteration 4' }));
    expect(screen.getByRole('button', { name: 'Show iteration 4' })).toHaveAttribute('aria-pressed', 'true');
  });

  it('says so when there are none yet', () => {
    render(Filmstrip, { snapshots: [], live: true, src: (u: string) => u });
    expect(screen.getByText(/first snapshot appears/)).toBeInTheDocument();
  });
});

describe('LossChart', () => {
  it('draws one line per loss with the latest values', () => {
    const losses = [1, 2, 3].map((i) => ({ iteration: i, content: 10 / i, style: 1000 / i, tv: 1, total: 1010 / i }));
    render(LossChart, { losses });
    const chart = screen.getByTestId('loss-chart');
    expect(chart.querySelectorAll('polyline')).toHaveLength(3);
    expect(chart.querySelector('polyline.total')?.getAttribute('points')?.split(' ')).toHaveLength(3);
    expect(screen.getByText(/total 337/)).toBeInTheDocument();
  });
});
