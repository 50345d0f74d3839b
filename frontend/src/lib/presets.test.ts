import { describe, expect, it } from 'vitest';
import { engine } from '../test-helpers';
import { defaults } from './params';
import { matchPreset, presetValues } from './presets';

describe('presets', () => {
  it('grow the image and iterations from fast to high quality', () => {
    const gatys = engine('gatys');
    const fast = presetValues(gatys, 'fast');
    const high = presetValues(gatys, 'high');
    expect(Number(fast.image_size)).toBeLessThan(Number(high.image_size));
    expect(Number(fast.total_iterations)).toBeLessThan(Number(high.total_iterations));
  });

  it('only set parameters the engine lists', () => {
    const blend = engine('blend');
    expect(Object.keys(presetValues(blend, 'fast')).sort()).toEqual(Object.keys(defaults(blend)).sort());
  });

  it('are recognised from values, and edits make them custom', () => {
    const blend = engine('blend');
    const values = presetValues(blend, 'high');
    expect(matchPreset(blend, values)).toBe('high');
    expect(matchPreset(blend, { ...values, alpha: 0.3 })).toBe('custom');
  });
});
