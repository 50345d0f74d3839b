import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { engines } from '../../test-helpers';
import EngineChoice from './EngineChoice.svelte';

describe('EngineChoice', () => {
  it('says honestly which engines can run and why not', () => {
    render(EngineChoice, { engines: engines().engines, mode: 'gatys', onselect: vi.fn() });
    expect(screen.getByTestId('engine-status-blend')).toHaveTextContent('Blend unavailable: model artifact not installed');
    expect(screen.getByTestId('engine-status-gatys')).toHaveTextContent('Gatys available · 1 worker');
  });

  it('names the model each engine runs, and nothing for an engine nobody runs', () => {
    render(EngineChoice, { engines: engines().engines, mode: 'gatys', onselect: vi.fn() });
    expect(screen.getByTestId('engine-model-gatys')).toHaveTextContent('Model: VGG19 (RANDOM weights)');
    expect(screen.queryByTestId('engine-model-blend')).toBeNull();
  });

  it('selects an engine by radio button', async () => {
    const onselect = vi.fn();
    render(EngineChoice, { engines: engines().engines, mode: 'gatys', onselect });
    expect(screen.getByRole('radio', { name: /Gatys/ })).toBeChecked();
    await fireEvent.click(screen.getByRole('radio', { name: /Blend/ }));
    expect(onselect).toHaveBeenCalledWith('blend');
  });
});
