/**
 * Run `tick` now and again `intervalMs` after each run finishes, until it returns false or the
 * returned stop function is called. Ticks never overlap, so a slow server is not piled on.
 */
export function startPolling(tick: () => Promise<boolean>, intervalMs = 1000): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const run = async () => {
    if (stopped) return;
    // The tick reports its own errors; keep polling so a brief outage does not end the page.
    const again = await tick().catch(() => true);
    if (again && !stopped) timer = setTimeout(run, intervalMs);
  };

  void run();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
