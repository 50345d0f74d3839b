/** The API's JSON types under the names the UI uses; the definitions are generated (api-types.ts). */
import type * as gen from './api-types';

export type Job = gen.Job;
export type JobStatus = gen.Job['status'];
export type EnginesResponse = gen.Engines;
export type Engine = gen.Engines['engines'][number];
export type Parameter = Engine['parameters'][number];
export type Limits = gen.Engines['limits'];
export type SnapshotList = gen.Snapshots;
export type Snapshot = gen.Snapshots['snapshots'][number];
export type LossList = gen.Losses;
export type LossPoint = gen.Losses['losses'][number];
export type ErrorBody = gen.Error;

export const TERMINAL: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL.includes(status);
}
