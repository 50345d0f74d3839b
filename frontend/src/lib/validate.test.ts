import { describe, expect, it } from 'vitest';
import { engines } from '../test-helpers';
import { acceptAttribute, checkFile, checkPixels, checkTotal, formatList } from './validate';

const limits = { ...engines().limits, max_file_bytes: 1000, max_request_bytes: 2500, max_pixels: 100 };
const file = (name: string, type: string, size = 10) => ({ name, type, size });

describe('checkFile', () => {
  it('accepts the formats the server lists', () => {
    expect(checkFile(file('a.png', 'image/png'), limits)).toBeNull();
    expect(checkFile(file('a.jpg', 'image/jpeg'), limits)).toBeNull();
    expect(checkFile(file('a.webp', 'image/webp'), limits)).toBeNull();
  });

  it('rejects other types, naming the file and the accepted formats', () => {
    const message = checkFile(file('notes.txt', 'text/plain'), limits);
    expect(message).toContain('notes.txt');
    expect(message).toContain('JPEG, PNG or WebP');
    expect(checkFile(file('a.gif', 'image/gif'), limits)).not.toBeNull();
  });

  it('uses the extension only when the browser gives no type', () => {
    expect(checkFile(file('photo.JPEG', ''), limits)).toBeNull();
    expect(checkFile(file('photo.bmp', ''), limits)).not.toBeNull();
  });

  it('rejects empty and oversized files with the limit in words', () => {
    expect(checkFile(file('a.png', 'image/png', 0), limits)).toContain('empty');
    expect(checkFile(file('a.png', 'image/png', 1001), limits)).toContain('limit is 1000 B');
  });

  it('only allows formats the server lists', () => {
    expect(checkFile(file('a.webp', 'image/webp'), { ...limits, formats: ['png'] })).toContain('use PNG');
  });
});

describe('pixel and request limits', () => {
  it('checks decoded dimensions', () => {
    expect(checkPixels(10, 10, limits)).toBeNull();
    expect(checkPixels(11, 10, limits)).toContain('11×10');
  });

  it('checks the sum of the upload', () => {
    expect(checkTotal([{ size: 1000 }, { size: 1000 }], limits)).toBeNull();
    expect(checkTotal([{ size: 1000 }, { size: 1000 }, { size: 1000 }], limits)).toContain('2.9 KiB');
  });

  it('builds the accept attribute and list', () => {
    expect(acceptAttribute(['jpeg', 'png'])).toBe('image/jpeg,.jpg,.jpeg,image/png,.png');
    expect(formatList(['png'])).toBe('PNG');
  });
});
