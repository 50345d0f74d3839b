/** The image slots of the submit form and how their files become the request's fields. */
import { checkFile, checkPixels } from '../../lib/validate';
import { dimensions } from '../../lib/thumbnail';
import type { Limits } from '../../lib/types';

export type SlotName = 'content' | 'style1' | 'style2' | 'init_image';

export interface Slot {
  file: File | null;
  url: string | null;
  error: string | null;
}

export const EMPTY: Slot = { file: null, url: null, error: null };

/** Each slot's label and hint, and what to say when a required one is left empty. */
export const SLOT_TEXT: Record<SlotName, { label: string; hint: string; missing?: string }> = {
  content: { label: 'Content image', hint: 'The photo to repaint', missing: 'Choose a content image.' },
  style1: { label: 'Style image', hint: 'The painting to imitate', missing: 'Choose a style image.' },
  style2: { label: 'Second style (optional)', hint: 'Blend in a second painting' },
  init_image: {
    label: 'Starting image',
    hint: 'Where the optimisation starts',
    missing: 'Choose a starting image, or pick another init method.',
  },
};

/** Which slot shows an error the server reported for a request field. */
export function slotForField(field: string | null): SlotName | null {
  if (field === 'content' || field === 'init_image') return field;
  if (field === 'style' || field === 'styles' || field?.startsWith('style[')) return 'style1';
  return null;
}

/** A slot for a newly picked file (checked for type and size; pixels are checked once decoded). */
export function pickedSlot(file: File, limits: Limits | null): Slot {
  const error = limits ? checkFile(file, limits) : null;
  return { file, url: error ? null : URL.createObjectURL(file), error };
}

/** The pixel-count problem of a slot's image, once the browser has decoded it. */
export async function pixelError(slot: Slot, limits: Limits | null): Promise<string | null> {
  if (!slot.url || !limits) return null;
  const size = await dimensions(slot.url);
  if (!size) return `“${slot.file?.name}” could not be read as an image.`;
  return checkPixels(size.width, size.height, limits);
}
