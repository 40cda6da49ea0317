/**
 * Send-to-outcome latency in constant memory: a log-scale histogram (buckets 1% wide from 0.01 ms
 * to about an hour), so percentiles are within 1% whatever the batch size. Send times are kept
 * per document as float32 milliseconds since the start (4 bytes a document).
 */
const GROWTH = Math.log(1.01);
const FLOOR_MS = 0.01;
const BUCKETS = 2_000;

export class Latency {
  private readonly sentAt: Float32Array;
  private readonly counts = new Uint32Array(BUCKETS);
  private n = 0;
  private maxMs = 0;
  private readonly origin = performance.now();

  constructor(documents: number) {
    this.sentAt = new Float32Array(documents).fill(Number.NaN);
  }

  sent(index: number): void {
    this.sentAt[index] = performance.now() - this.origin;
  }

  /** Records the latency of a document sent in this run (a document sent by an earlier process is skipped). */
  finished(index: number): void {
    const at = this.sentAt[index]!;
    if (Number.isNaN(at)) return;
    const ms = performance.now() - this.origin - at;
    this.counts[bucket(ms)]!++;
    this.n++;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** Forgets a document's send time: its outcome will not be counted (it was recovered, not sent here). */
  skip(index: number): void {
    this.sentAt[index] = Number.NaN;
  }

  get count(): number {
    return this.n;
  }

  summary(): { p50: number; p99: number; max: number } {
    return { p50: round1(this.percentile(0.5)), p99: round1(this.percentile(0.99)), max: round1(this.maxMs) };
  }

  private percentile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.min(this.n, Math.max(1, Math.ceil(q * this.n)));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(this.maxMs, FLOOR_MS * Math.exp((b + 0.5) * GROWTH));
    }
    return this.maxMs;
  }
}

function bucket(ms: number): number {
  if (!(ms > FLOOR_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.floor(Math.log(ms / FLOOR_MS) / GROWTH));
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}
