import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './api';
import { EtaTracker } from './eta';
import { formatBytes, formatDuration, labelOf } from './format';
import { describeError, describeJobError } from './messages';
import { startPolling } from './poll';
import { jobHref, jobShareUrl, parseHash } from './router';

describe('router', () => {
  it('parses the hash routes', () => {
    expect(parseHash('')).toEqual({ name: 'submit' });
    expect(parseHash('#/')).toEqual({ name: 'submit' });
    expect(parseHash('#/history')).toEqual({ name: 'history' });
    expect(parseHash('#/jobs/1f2e-ab')).toEqual({ name: 'job', id: '1f2e-ab' });
    expect(parseHash('#/jobs/a/b')).toEqual({ name: 'notfound', path: '/jobs/a/b' });
  });

  it('builds shareable job links', () => {
    expect(jobHref('x1')).toBe('#/jobs/x1');
    expect(jobShareUrl('x1', { origin: 'http://h:8', pathname: '/' })).toBe('http://h:8/#/jobs/x1');
  });
});

describe('EtaTracker', () => {
  it('estimates time left from the observed rate', () => {
    const eta = new EtaTracker();
    eta.observe(10, 0);
    expect(eta.secondsLeft(100)).toBeNull();
    eta.observe(30, 4000); // 5 iterations per second
    expect(eta.rate()).toBe(5);
    expect(eta.secondsLeft(100)).toBe(14);
  });

  it('starts over when progress falls (a retried job)', () => {
    const eta = new EtaTracker();
    eta.observe(50, 0);
    eta.observe(60, 1000);
    eta.observe(2, 2000);
    expect(eta.rate()).toBeNull();
  });
});

describe('format', () => {
  it('formats sizes, durations and labels', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(20 * 2 ** 20)).toBe('20 MiB');
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(185)).toBe('3 min 05 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(labelOf('total_iterations')).toBe('Total iterations');
  });
});

describe('messages', () => {
  it('says which input an error concerns', () => {
    const error = new ApiError(415, 'invalid', 'not an image (text/plain)', 'content');
    expect(describeError(error)).toBe('That file type is not supported. Content image: not an image (text/plain)');
    expect(describeError(new ApiError(422, 'invalid', 'must be at least 16', 'image_size'))).toBe('Image size: must be at least 16');
    expect(describeError(new ApiError(0, 'network', 'x'))).toContain('cannot be reached');
  });

  it('explains failed jobs', () => {
    expect(describeJobError({ code: 'artifact', message: 'vgg19.pth missing' })).toBe('A model file is missing or damaged: vgg19.pth missing');
    expect(describeJobError(null)).toContain('without saying why');
  });
});

describe('startPolling', () => {
  afterEach(() => vi.useRealTimers());

  it('repeats until the tick says stop, without overlapping', async () => {
    vi.useFakeTimers();
    let runs = 0;
    startPolling(async () => ++runs < 3, 1000);
    await vi.advanceTimersByTimeAsync(0);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(3);
  });

  it('stops when told to and keeps going after a failing tick', async () => {
    vi.useFakeTimers();
    let runs = 0;
    const stop = startPolling(async () => {
      runs += 1;
      throw new Error('boom');
    }, 1000);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(2);
    stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toBe(2);
  });
});
