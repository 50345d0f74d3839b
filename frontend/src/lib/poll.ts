/**
 * Run `tick` now and again `intervalMs` after each run finishes, until it returns false or the
 * returned stop function is called. Ticks never overlap, so a slow server is not piled on.
 */
export function startPolling(tick: () => Promise<boolean>, intervalMs = 1000): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const run = async () => {
    if (stopped) return;
    let again = false;
    try {
      again = await tick();
    } catch {
      // The tick reports its own errors; keep polling so a brief outage does not end the page.
      again = true;
    }
    if (again && !stopped) timer = setTimeout(run, intervalMs);
  };

  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
