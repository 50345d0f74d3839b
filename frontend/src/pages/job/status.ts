/** Job statuses in words. */
import type { JobStatus } from '../../lib/types';

export const STATUS_TEXT: Record<JobStatus | 'expired', string> = {
  queued: 'Queued',
  running: 'Running',
  succeeded: 'Done',
  failed: 'Failed',
  cancelled: 'Cancelled',
  expired: 'Expired',
};
