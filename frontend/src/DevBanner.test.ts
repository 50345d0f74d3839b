import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import DevBanner from './DevBanner.svelte';
import { engines } from './test-helpers';

describe('DevBanner', () => {
  it('warns when an engine runs on random weights', () => {
    render(DevBanner, { engines: engines().engines });
    expect(screen.getByRole('status')).toHaveTextContent('Gatys runs on random weights');
    expect(screen.getByTestId('dev-fix-gatys')).toHaveTextContent('stylequeue models pull vgg19');
    expect(screen.queryByTestId('dev-fix-blend')).toBeNull(); // only the engines still on random weights
  });

  it('stays away with real weights', () => {
    const real = engines().engines.map((e) => ({ ...e, random_weights: false }));
    render(DevBanner, { engines: real });
    expect(screen.queryByRole('status')).toBeNull();
  });
});
