/**
 * Progress rate and time left, from progress the browser observed itself. Using our own clock
 * for both ends avoids trusting the server's clock, which may differ from the browser's.
 */

export interface Sample {
  at: number; // ms, the browser's clock
  iteration: number;
}

export class EtaTracker {
  private first: Sample | null = null;
  private last: Sample | null = null;

  /** Record progress seen at `at` (ms); a fall in iteration (a retried job) starts over. */
  observe(iteration: number, at: number): void {
    if (!this.first || !this.last || iteration < this.last.iteration) {
      this.first = { at, iteration };
    }
    this.last = { at, iteration };
  }

  /** Iterations per second, or null before two distinct observations. */
  rate(): number | null {
    if (!this.first || !this.last) return null;
    const done = this.last.iteration - this.first.iteration;
    const seconds = (this.last.at - this.first.at) / 1000;
    return done > 0 && seconds > 0 ? done / seconds : null;
  }

  /** Seconds until `total`, or null when no rate is known yet. */
  secondsLeft(total: number): number | null {
    const rate = this.rate();
    if (rate === null || !this.last) return null;
    return Math.max(0, (total - this.last.iteration) / rate);
  }
}
