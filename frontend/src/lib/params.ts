/**
 * The advanced panel's model, derived from an engine's parameter list (`/api/v1/engines`):
 * which control each parameter gets, its default, a client-side range check and how it is sent
 * as a form field. Nothing here knows a parameter by name: a new server parameter just appears.
 */
import type { Engine, Parameter } from './types';

/** A parameter's value as the form holds it; lists of numbers are edited as "1, 0.5" text. */
export type ParamValue = boolean | number | string | string[] | null;
export type ParamValues = Record<string, ParamValue>;

export type Control = 'checkbox' | 'select' | 'multi' | 'slider' | 'number' | 'list' | 'text';

/** A JSON Schema as `/api/v1/engines` lists it for each parameter (pydantic's, field by field). */
interface Schema {
  type?: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  anyOf?: Schema[];
}

/** The schema without an optional parameter's `null` alternative. */
function schemaOf(p: Parameter): Schema {
  const schema = p.schema as Schema;
  return schema.anyOf?.find((s) => s.type !== 'null') ?? schema;
}

/** The schema of the values: a list's items, else the parameter's own. */
function valueSchema(p: Parameter): Schema {
  const schema = schemaOf(p);
  return schema.type === 'array' ? (schema.items ?? {}) : schema;
}

export function isOptional(p: Parameter): boolean {
  return ((p.schema as Schema).anyOf ?? []).some((s) => s.type === 'null');
}

export function isInteger(p: Parameter): boolean {
  return valueSchema(p).type === 'integer';
}

/** The allowed values of a choice, or of a list's items. */
export function choicesOf(p: Parameter): string[] | undefined {
  return valueSchema(p).enum;
}

/** Lower and upper bound of a number (or of a list's numbers); `exclusive`: the lower one is not allowed. */
export function boundsOf(p: Parameter): { min?: number; max?: number; exclusive: boolean } {
  const s = valueSchema(p);
  const exclusive = s.exclusiveMinimum !== undefined;
  return { min: exclusive ? s.exclusiveMinimum : s.minimum, max: s.maximum, exclusive };
}

/** Which input renders this parameter. A bounded fraction (0–1) gets a slider. */
export function controlOf(p: Parameter): Control {
  const schema = schemaOf(p);
  if (schema.type === 'boolean') return 'checkbox';
  if (schema.type === 'array') return schema.items?.enum ? 'multi' : 'list';
  if (schema.enum) return 'select';
  const { min, max } = boundsOf(p);
  if (schema.type === 'number' && min !== undefined && max !== undefined && max - min <= 1) return 'slider';
  if (schema.type === 'integer' || schema.type === 'number') return 'number';
  return 'text';
}

/** The form value of a parameter's server default. */
export function defaultValue(p: Parameter): ParamValue {
  const control = controlOf(p);
  if (control === 'list') return Array.isArray(p.default) ? p.default.join(', ') : '';
  if (control === 'multi') return Array.isArray(p.default) ? p.default.map(String) : [];
  return (p.default ?? null) as ParamValue;
}

export function defaults(engine: Engine): ParamValues {
  return Object.fromEntries(engine.parameters.map((p) => [p.name, defaultValue(p)]));
}

function rangeError(p: Parameter, n: number): string | null {
  if (!Number.isFinite(n)) return 'must be a number';
  if (isInteger(p) && !Number.isInteger(n)) return 'must be a whole number';
  const { min, max, exclusive } = boundsOf(p);
  if (min !== undefined && (exclusive ? n <= min : n < min)) {
    return exclusive ? `must be greater than ${min}` : `must be at least ${min}`;
  }
  if (max !== undefined && n > max) return `must be at most ${max}`;
  return null;
}

/** What is wrong with a value, in words, or null. The server checks again (and cross-field rules). */
export function checkValue(p: Parameter, value: ParamValue): string | null {
  const control = controlOf(p);
  if (value === null || value === '') {
    return isOptional(p) || control === 'list' ? null : 'must not be empty';
  }
  if (control === 'number' || control === 'slider') return rangeError(p, Number(value));
  if (control === 'list') {
    for (const item of String(value).split(',').map((s) => s.trim()).filter(Boolean)) {
      const problem = rangeError(p, Number(item));
      if (problem) return `“${item}” ${problem}`;
    }
  }
  if (control === 'multi' && Array.isArray(value) && value.length < (schemaOf(p).minItems ?? 0)) {
    return 'choose at least one';
  }
  return null;
}

/** The form-field text of a value: lists comma-separated, booleans as true/false. */
export function serialize(value: ParamValue): string {
  if (value === null) return '';
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter(Boolean).join(',') || value.trim();
  return String(value);
}

/**
 * Form fields for the values that differ from the engine's defaults: the server stays the one
 * place defaults are written, and the job's recorded params show the full set.
 */
export function changedFields(engine: Engine, values: ParamValues): [string, string][] {
  return engine.parameters.flatMap((p): [string, string][] => {
    const text = serialize(values[p.name] ?? null);
    return p.name in values && text !== serialize(defaultValue(p)) ? [[p.name, text]] : [];
  });
}

export function errorsOf(engine: Engine, values: ParamValues): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const p of engine.parameters) {
    const problem = checkValue(p, values[p.name] ?? null);
    if (problem) errors[p.name] = problem;
  }
  return errors;
}
