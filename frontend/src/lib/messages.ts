/** Errors in plain words: what went wrong, about which input, and what to do. */
import { ApiError } from './api';
import { labelOf } from './format';
import type { Job } from './types';

const FIELD_LABELS: Record<string, string> = {
  content: 'Content image',
  style: 'Style image',
  init_image: 'Starting image',
  mode: 'Engine',
};

export function fieldLabel(field: string): string {
  return FIELD_LABELS[field] ?? labelOf(field);
}

const BY_STATUS: Record<number, string> = {
  0: 'The server cannot be reached. Check that stylequeue is running, then try again.',
  413: 'The upload is too large.',
  415: 'That file type is not supported.',
  429: 'The server is busy; try again in a moment.',
  503: 'The service is not ready (a backing service is down); try again shortly.',
};

/** One sentence for any error: the server's message, prefixed by the field it concerns. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 0) return BY_STATUS[0];
    const message = error.message.replace(/^\d{3} /, '');
    const text = error.field ? `${fieldLabel(error.field)}: ${message}` : message;
    const hint = BY_STATUS[error.status];
    return hint && !text.toLowerCase().includes(hint.slice(0, 12).toLowerCase()) ? `${hint} ${text}` : text;
  }
  return error instanceof Error ? error.message : String(error);
}

/** A failed job's error record in words. */
export function describeJobError(error: Job['error']): string {
  if (!error) return 'The job failed without saying why.';
  const lead: Record<string, string> = {
    engine_unavailable: 'The engine could not run:',
    artifact: 'A model file is missing or damaged:',
    cancelled: 'The job was cancelled:',
    invalid: 'The job’s inputs were rejected:',
  };
  return `${lead[error.code] ?? 'The job failed:'} ${error.message}`;
}
