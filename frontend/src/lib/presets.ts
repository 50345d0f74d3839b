/**
 * Fast / Balanced / High quality: named sets of parameter values per engine. A preset only sets
 * parameters the engine actually lists; everything else keeps the server's default.
 */
import { defaults, serialize, type ParamValues } from './params';
import type { Engine } from './types';

export type PresetName = 'fast' | 'balanced' | 'high';

export const PRESETS: { name: PresetName; label: string; blurb: string }[] = [
  { name: 'fast', label: 'Fast', blurb: 'small image, quick look' },
  { name: 'balanced', label: 'Balanced', blurb: 'good for most photos' },
  { name: 'high', label: 'High quality', blurb: 'large image, takes longest' },
];

const VALUES: Record<string, Record<PresetName, ParamValues>> = {
  gatys: {
    fast: { image_size: 256, total_iterations: 100, snapshot_every: 10, coarse_to_fine: false },
    balanced: { image_size: 512, total_iterations: 300, snapshot_every: 25, coarse_to_fine: true },
    high: { image_size: 1024, total_iterations: 800, snapshot_every: 50, coarse_to_fine: true },
  },
  blend: {
    fast: { image_size: 256 },
    balanced: { image_size: 512 },
    high: { image_size: 1024 },
  },
};

/** The engine's defaults overlaid with the preset's values for parameters the engine has. */
export function presetValues(engine: Engine, preset: PresetName): ParamValues {
  const values = defaults(engine);
  for (const [name, value] of Object.entries(VALUES[engine.mode]?.[preset] ?? {})) {
    if (name in values) values[name] = value;
  }
  return values;
}

/** Which preset these values equal, or 'custom'. */
export function matchPreset(engine: Engine, values: ParamValues): PresetName | 'custom' {
  const equals = (preset: ParamValues) =>
    engine.parameters.every((p) => serialize(preset[p.name] ?? null) === serialize(values[p.name] ?? null));
  return PRESETS.find(({ name }) => equals(presetValues(engine, name)))?.name ?? 'custom';
}
