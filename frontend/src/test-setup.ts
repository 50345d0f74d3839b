import '@testing-library/jest-dom/vitest';

// jsdom implements neither object URLs, image decoding nor canvas. Emulate what a browser does
// with them closely enough for the UI's code paths: each file gets a blob: URL; an <img> of a
// blob: URL "decodes" as 64×48 on the next tick, any other source fails to load; canvases have no
// 2D context (the UI then simply makes no thumbnail).
let objectUrls = 0;
URL.createObjectURL = () => `blob:test/${++objectUrls}`;
URL.revokeObjectURL = () => undefined;
HTMLCanvasElement.prototype.getContext = (() => null) as typeof HTMLCanvasElement.prototype.getContext;

const srcDescriptor = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, 'src');
Object.defineProperty(HTMLImageElement.prototype, 'src', {
  configurable: true,
  get() {
    return srcDescriptor?.get?.call(this);
  },
  set(value: string) {
    srcDescriptor?.set?.call(this, value);
    const decodes = String(value).startsWith('blob:');
    Object.defineProperty(this, 'naturalWidth', { configurable: true, value: decodes ? 64 : 0 });
    Object.defineProperty(this, 'naturalHeight', { configurable: true, value: decodes ? 48 : 0 });
    setTimeout(() => this.dispatchEvent(new Event(decodes ? 'load' : 'error')), 0);
  },
});
