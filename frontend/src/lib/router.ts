/** Hash routes: the same server serves the SPA and the API, so `#/jobs/<id>` is a shareable URL. */

export type Route =
  | { name: 'submit' }
  | { name: 'job'; id: string }
  | { name: 'history' }
  | { name: 'notfound'; path: string };

const JOB = /^\/jobs\/([A-Za-z0-9_-]+)\/?$/;

export function parseHash(hash: string): Route {
  const path = decodeURIComponent(hash.replace(/^#/, '')) || '/';
  if (path === '/' || path === '/new') return { name: 'submit' };
  if (path === '/history' || path === '/history/') return { name: 'history' };
  const job = JOB.exec(path);
  if (job) return { name: 'job', id: job[1] };
  return { name: 'notfound', path };
}

export function jobHref(id: string): string {
  return `#/jobs/${encodeURIComponent(id)}`;
}

/** The full shareable address of a job page, for copying. */
export function jobShareUrl(id: string, location: Pick<Location, 'origin' | 'pathname'>): string {
  return `${location.origin}${location.pathname}${jobHref(id)}`;
}
