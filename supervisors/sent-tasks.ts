/**
 * What one process of a distributed pipeline knows of the tasks it sent: which still wait for their
 * outcome (any process may run them; the outcome comes back on the outcomes stream every process
 * reads), how many were accepted, and who waits in `drain()`. Owns those ids, the counts of the
 * outcomes heard, and the drain waiters.
 */
export class SentTasks {
  private readonly waiting = new Set<string>();
  private drainers: { resolve: () => void; reject: (e: Error) => void }[] = [];
  accepted = 0;
  completed = 0;
  deadLettered = 0;

  /** Tasks this process sent that have no outcome yet. */
  get pending(): number {
    return this.waiting.size;
  }

  /** `id` is on its way (sent or replayed): noted before the publish, as its outcome may come back before the publish's answer. */
  sending(id: string): void {
    this.waiting.add(id);
  }

  /** `id` did not go (the publish failed, or the server had it already): nobody waits for it here. */
  notSent(id: string): void {
    if (this.waiting.delete(id)) this.settle();
  }

  /** An outcome arrived, whichever process sent its task; true if it was one of this process's. */
  ended(id: string, status: 'completed' | 'dead'): boolean {
    if (status === 'completed') this.completed++;
    else this.deadLettered++;
    if (!this.waiting.delete(id)) return false;
    this.settle();
    return true;
  }

  /** Resolves when every task sent here has its outcome. */
  drain(): Promise<void> {
    if (this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainers.push({ resolve, reject }));
  }

  /** The pipeline stopped or failed here: the drain waiters are told why. */
  refuse(error: Error): void {
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.reject(error);
  }

  private settle(): void {
    if (this.waiting.size > 0 || this.drainers.length === 0) return;
    const waiting = this.drainers;
    this.drainers = [];
    for (const d of waiting) d.resolve();
  }
}
