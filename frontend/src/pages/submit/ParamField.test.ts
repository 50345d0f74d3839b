import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import { engine } from '../../test-helpers';
import ParamField from './ParamField.svelte';

const param = (mode: string, name: string) => engine(mode).parameters.find((p) => p.name === name)!;

describe('ParamField', () => {
  it('renders a number input with the bounds and reports numbers', async () => {
    const onchange = vi.fn();
    render(ParamField, { param: param('gatys', 'image_size'), value: 512, error: null, onchange });
    const input = screen.getByLabelText('Image size') as HTMLInputElement;
    expect(input).toHaveAttribute('min', '16');
    expect(input).toHaveAttribute('max', '2048');
    await fireEvent.input(input, { target: { value: '64' } });
    expect(onchange).toHaveBeenCalledWith(64);
  });

  it('renders a slider for the blend ratio', async () => {
    const onchange = vi.fn();
    render(ParamField, { param: param('blend', 'ratio'), value: 0.5, error: null, onchange });
    const slider = screen.getByRole('slider', { name: /Ratio/ });
    await fireEvent.input(slider, { target: { value: '0.75' } });
    expect(onchange).toHaveBeenCalledWith(0.75);
  });

  it('renders a select for choices and checkboxes for layers, in server order', async () => {
    const onchange = vi.fn();
    render(ParamField, { param: param('gatys', 'optimizer'), value: 'lbfgs', error: null, onchange });
    expect(screen.getByRole('combobox', { name: 'Optimizer' })).toHaveValue('lbfgs');

    const layers = vi.fn();
    render(ParamField, { param: param('gatys', 'content_layers'), value: ['relu4_2'], error: null, onchange: layers });
    await fireEvent.click(screen.getByRole('checkbox', { name: 'relu1_1' }));
    expect(layers).toHaveBeenCalledWith(['relu1_1', 'relu4_2']);
  });

  it('shows the error and marks the input invalid', () => {
    render(ParamField, { param: param('gatys', 'image_size'), value: 8, error: 'must be at least 16', onchange: vi.fn() });
    expect(screen.getByRole('alert')).toHaveTextContent('must be at least 16');
    expect(screen.getByLabelText('Image size')).toHaveAttribute('aria-invalid', 'true');
  });

  it('lets an optional number be emptied', async () => {
    const onchange = vi.fn();
    render(ParamField, { param: param('gatys', 'seed'), value: 3, error: null, onchange });
    await fireEvent.input(screen.getByLabelText('Seed'), { target: { value: '' } });
    expect(onchange).toHaveBeenCalledWith(null);
  });
});
