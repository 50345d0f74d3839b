/**
 * This browser's jobs, newest first, kept in localStorage: id, mode, last known status and small
 * thumbnails (data URLs). Storage is passed in so tests can use their own.
 */
import type { JobStatus } from './types';

export interface HistoryEntry {
  id: string;
  mode: string;
  submitted_at: string;
  status: JobStatus | 'expired';
  /** Small JPEG data URL of the content image, made in the browser at submit time. */
  content_thumb?: string;
  /** Small JPEG data URL of the result, made once the job succeeded. */
  result_thumb?: string;
}

const KEY = 'stylequeue.history.v1';
export const MAX_ENTRIES = 40;

type Store = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

function defaultStore(): Store | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage disabled (privacy settings): history is simply not kept
  }
}

export function loadHistory(store: Store | null = defaultStore()): HistoryEntry[] {
  const text = store?.getItem(KEY);
  if (!text) return [];
  try {
    const data: unknown = JSON.parse(text);
    return Array.isArray(data) ? data.filter((e) => typeof e?.id === 'string') : [];
  } catch {
    return [];
  }
}

/** Write entries; on a full store drop pictures of old entries, then old entries, until it fits. */
export function saveHistory(entries: HistoryEntry[], store: Store | null = defaultStore()): void {
  if (!store) return;
  let list = entries.slice(0, MAX_ENTRIES);
  for (;;) {
    try {
      store.setItem(KEY, JSON.stringify(list));
      return;
    } catch {
      if (list.length === 0) return;
      const withPicture = list.findLastIndex((e) => e.content_thumb || e.result_thumb);
      list =
        withPicture > 0
          ? list.map((e, i) => (i === withPicture ? { id: e.id, mode: e.mode, submitted_at: e.submitted_at, status: e.status } : e))
          : list.slice(0, -1);
    }
  }
}

/** Add or update one entry (merging fields), moving new entries to the front. */
export function upsertHistory(entry: Partial<HistoryEntry> & { id: string }, store: Store | null = defaultStore()): HistoryEntry[] {
  const entries = loadHistory(store);
  const index = entries.findIndex((e) => e.id === entry.id);
  if (index >= 0) {
    entries[index] = { ...entries[index], ...entry };
  } else {
    entries.unshift({ mode: '', submitted_at: new Date().toISOString(), status: 'queued', ...entry });
  }
  saveHistory(entries, store);
  return loadHistory(store);
}

export function removeHistory(id: string, store: Store | null = defaultStore()): HistoryEntry[] {
  saveHistory(loadHistory(store).filter((e) => e.id !== id), store);
  return loadHistory(store);
}

export function clearHistory(store: Store | null = defaultStore()): void {
  store?.removeItem(KEY);
}

export function findHistory(id: string, store: Store | null = defaultStore()): HistoryEntry | undefined {
  return loadHistory(store).find((e) => e.id === id);
}
