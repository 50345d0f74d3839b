import { describe, expect, it } from 'vitest';
import { engine } from '../test-helpers';
import { changedFields, checkValue, controlOf, defaults, errorsOf, serialize } from './params';
import type { Parameter } from './types';

const gatys = engine('gatys');
const blend = engine('blend');
const param = (e: typeof gatys, name: string): Parameter => {
  const found = e.parameters.find((p) => p.name === name);
  if (!found) throw new Error(`no parameter ${name}`);
  return found;
};

describe('controlOf', () => {
  it('derives the control from the parameter description', () => {
    expect(controlOf(param(gatys, 'preserve_colors'))).toBe('checkbox');
    expect(controlOf(param(gatys, 'optimizer'))).toBe('select');
    expect(controlOf(param(gatys, 'style_layers'))).toBe('multi');
    expect(controlOf(param(gatys, 'style_blend_weights'))).toBe('list');
    expect(controlOf(param(gatys, 'image_size'))).toBe('number');
    expect(controlOf(param(gatys, 'seed'))).toBe('number');
    expect(controlOf(param(blend, 'ratio'))).toBe('slider');
    expect(controlOf(param(blend, 'alpha'))).toBe('slider');
  });
});

describe('checkValue', () => {
  it('checks ranges, integers and exclusive minimums', () => {
    const size = param(gatys, 'image_size');
    expect(checkValue(size, 512)).toBeNull();
    expect(checkValue(size, 8)).toBe('must be at least 16');
    expect(checkValue(size, 99999)).toBe('must be at most 2048');
    expect(checkValue(size, 32.5)).toBe('must be a whole number');
    expect(checkValue(size, '')).toBe('must not be empty');
    expect(checkValue(param(gatys, 'learning_rate'), 0)).toBe('must be greater than 0');
  });

  it('lets optional and list parameters be empty, and checks list items', () => {
    expect(checkValue(param(gatys, 'seed'), null)).toBeNull();
    const weights = param(gatys, 'style_blend_weights');
    expect(checkValue(weights, '')).toBeNull();
    expect(checkValue(weights, '1, 0.5')).toBeNull();
    expect(checkValue(weights, '1, -2')).toBe('“-2” must be at least 0');
    expect(checkValue(weights, '1, x')).toBe('“x” must be a number');
  });

  it('requires at least one layer where the default has some', () => {
    expect(checkValue(param(gatys, 'style_layers'), [])).toBe('choose at least one');
  });
});

describe('form fields', () => {
  it('sends nothing when every value is the default', () => {
    expect(changedFields(gatys, defaults(gatys))).toEqual([]);
    expect(errorsOf(gatys, defaults(gatys))).toEqual({});
  });

  it('sends only changed values, lists comma-separated', () => {
    const values = { ...defaults(gatys), image_size: 32, style_layers: ['relu1_1', 'relu2_1'], style_blend_weights: ' 2, 1 ' };
    expect(changedFields(gatys, values)).toEqual([
      ['style_layers', 'relu1_1,relu2_1'],
      ['style_blend_weights', '2,1'],
      ['image_size', '32'],
    ]);
  });

  it('serializes booleans and nulls as the server parses them', () => {
    expect(serialize(true)).toBe('true');
    expect(serialize(null)).toBe('');
    expect(changedFields(gatys, { ...defaults(gatys), coarse_to_fine: false })).toEqual([['coarse_to_fine', 'false']]);
  });
});
