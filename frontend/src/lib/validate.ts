/**
 * Client-side checks of uploads against the limits `/api/v1/engines` reports. The server checks
 * again; these only spare the user a round trip and say what is wrong before anything is sent.
 */
import { formatBytes } from './format';
import type { Limits } from './types';

const FORMATS: Record<string, { name: string; mime: string[]; extensions: string[] }> = {
  jpeg: { name: 'JPEG', mime: ['image/jpeg', 'image/jpg', 'image/pjpeg'], extensions: ['.jpg', '.jpeg'] },
  png: { name: 'PNG', mime: ['image/png'], extensions: ['.png'] },
  webp: { name: 'WebP', mime: ['image/webp'], extensions: ['.webp'] },
};

function formatOf(file: Pick<File, 'name' | 'type'>, formats: string[]): string | undefined {
  const name = file.name.toLowerCase();
  const type = file.type.toLowerCase();
  // Some systems give no MIME type; the extension is the only hint then.
  return formats.find((format) =>
    type
      ? (FORMATS[format]?.mime ?? [`image/${format}`]).includes(type)
      : (FORMATS[format]?.extensions ?? [`.${format}`]).some((ext) => name.endsWith(ext)),
  );
}

/** Human list of the accepted formats: "JPEG, PNG or WebP". */
export function formatList(formats: string[]): string {
  const names = formats.map((f) => FORMATS[f]?.name ?? f.toUpperCase());
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : (names[0] ?? '');
}

/** The `accept` attribute of a file input for these formats. */
export function acceptAttribute(formats: string[]): string {
  return formats.flatMap((f) => (FORMATS[f] ? [FORMATS[f].mime[0], ...FORMATS[f].extensions] : [])).join(',');
}

/** Why this file cannot be uploaded, or null when it may. */
export function checkFile(file: Pick<File, 'name' | 'type' | 'size'>, limits: Limits): string | null {
  if (!formatOf(file, limits.formats)) {
    const kind = file.type || 'unknown type';
    return `“${file.name}” is not a supported image (${kind}); use ${formatList(limits.formats)}.`;
  }
  if (file.size === 0) return `“${file.name}” is empty.`;
  if (file.size > limits.max_file_bytes) {
    return `“${file.name}” is ${formatBytes(file.size)}; the limit is ${formatBytes(limits.max_file_bytes)} per file.`;
  }
  return null;
}

/** Why these decoded dimensions are too large, or null. */
export function checkPixels(width: number, height: number, limits: Limits): string | null {
  if (width * height <= limits.max_pixels) return null;
  const mp = (n: number) => `${(n / 1e6).toFixed(1)} megapixels`;
  return `The image is ${width}×${height} (${mp(width * height)}); the limit is ${mp(limits.max_pixels)}.`;
}

/** Why the whole request would be too large, or null. */
export function checkTotal(files: Pick<File, 'size'>[], limits: Limits): string | null {
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total <= limits.max_request_bytes) return null;
  return `The images add up to ${formatBytes(total)}; one job may upload at most ${formatBytes(limits.max_request_bytes)}.`;
}
