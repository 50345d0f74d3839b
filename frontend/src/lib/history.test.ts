import { describe, expect, it } from 'vitest';
import { MAX_ENTRIES, clearHistory, findHistory, loadHistory, removeHistory, saveHistory, upsertHistory } from './history';

/** A Storage with a byte quota, failing like the browser's when full. */
function memoryStore(quota = Infinity) {
  const data = new Map<string, string>();
  return {
    getItem: (k: string) => data.get(k) ?? null,
    setItem: (k: string, v: string) => {
      if (v.length > quota) throw new DOMException('full', 'QuotaExceededError');
      data.set(k, v);
    },
    removeItem: (k: string) => void data.delete(k),
  };
}

describe('history', () => {
  it('adds new jobs first and merges updates', () => {
    const store = memoryStore();
    upsertHistory({ id: 'a', mode: 'blend', status: 'queued' }, store);
    upsertHistory({ id: 'b', mode: 'gatys', status: 'queued' }, store);
    upsertHistory({ id: 'a', status: 'succeeded', result_thumb: 'data:x' }, store);
    const entries = loadHistory(store);
    expect(entries.map((e) => e.id)).toEqual(['b', 'a']);
    expect(findHistory('a', store)).toMatchObject({ mode: 'blend', status: 'succeeded', result_thumb: 'data:x' });
  });

  it('removes and clears', () => {
    const store = memoryStore();
    upsertHistory({ id: 'a' }, store);
    upsertHistory({ id: 'b' }, store);
    expect(removeHistory('a', store).map((e) => e.id)).toEqual(['b']);
    clearHistory(store);
    expect(loadHistory(store)).toEqual([]);
  });

  it('keeps at most MAX_ENTRIES', () => {
    const store = memoryStore();
    for (let i = 0; i < MAX_ENTRIES + 5; i++) upsertHistory({ id: `j${i}` }, store);
    const entries = loadHistory(store);
    expect(entries).toHaveLength(MAX_ENTRIES);
    expect(entries[0].id).toBe(`j${MAX_ENTRIES + 4}`);
  });

  it('drops old pictures rather than failing when storage is full', () => {
    const store = memoryStore(600);
    const picture = 'data:image/jpeg;base64,' + 'A'.repeat(200);
    const entries = ['a', 'b', 'c'].map((id) => ({ id, mode: 'blend', submitted_at: 't', status: 'queued' as const, content_thumb: picture }));
    saveHistory(entries, store);
    const kept = loadHistory(store);
    expect(kept.map((e) => e.id)).toEqual(['a', 'b', 'c']);
    expect(kept[0].content_thumb).toBe(picture);
    expect(kept[2].content_thumb).toBeUndefined();
  });

  it('ignores corrupt storage', () => {
    const store = memoryStore();
    store.setItem('stylequeue.history.v1', '{not json');
    expect(loadHistory(store)).toEqual([]);
  });
});
