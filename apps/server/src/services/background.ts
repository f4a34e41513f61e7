/**
 * Work that finishes after the response: audit appends. Each task is tracked until it settles, so a
 * graceful shutdown (and a test) can wait for all of them; tasks must handle their own errors.
 */
export class BackgroundTasks {
  private readonly pending = new Set<Promise<void>>();

  track(task: Promise<void>): void {
    this.pending.add(task);
    void task.finally(() => this.pending.delete(task));
  }

  /** Resolves once every task started so far (and any they start) has settled. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}
