/** The API's JSON types under the names the UI uses; the definitions are generated (api-types.ts). */
import type { components } from './api-types';

type Schemas = components['schemas'];
export type Job = Schemas['JobView'];
export type JobStatus = Job['status'];
export type EnginesResponse = Schemas['Engines'];
export type Engine = EnginesResponse['engines'][number];
export type Parameter = Engine['parameters'][number];
export type Limits = EnginesResponse['limits'];
export type SnapshotList = Schemas['SnapshotList'];
export type Snapshot = SnapshotList['snapshots'][number];
export type LossList = Schemas['LossList'];
export type LossPoint = LossList['losses'][number];
export type ErrorBody = Schemas['ErrorBody'];

export function isTerminal(status: JobStatus): boolean {
  return ['succeeded', 'failed', 'cancelled'].includes(status);
}
