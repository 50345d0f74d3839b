/** Downscaled JPEG data URLs of images, for history thumbnails (drawn in the browser, same origin). */

function load(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot decode image ${src.slice(0, 40)}`));
    img.src = src;
  });
}

/** A JPEG data URL at most `maxSide` px on its longest side, or undefined when it cannot be made. */
export async function thumbnail(src: string, maxSide: number, quality = 0.8): Promise<string | undefined> {
  try {
    const img = await load(src);
    const scale = Math.min(1, maxSide / Math.max(img.naturalWidth, img.naturalHeight));
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(img.naturalWidth * scale));
    canvas.height = Math.max(1, Math.round(img.naturalHeight * scale));
    const context = canvas.getContext('2d');
    if (!context) return undefined;
    context.drawImage(img, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL('image/jpeg', quality);
  } catch {
    return undefined; // a missing thumbnail is cosmetic; never fail the page over it
  }
}

/** Width and height of an image file, or null when the browser cannot decode it. */
export function dimensions(src: string): Promise<{ width: number; height: number } | null> {
  return load(src).then((img) => ({ width: img.naturalWidth, height: img.naturalHeight }), () => null);
}
