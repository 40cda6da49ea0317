import type { MetricFamily } from './prometheus.js';

/**
 * A Baton metric family in the shape prom-client's registry reads (`registerMetric`): name, help,
 * type, aggregator, `get()` and `reset()`. Baton does not depend on prom-client: these are plain
 * objects, and `get()` reads the system at scrape time.
 */
export interface PromClientMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricFamily['type'];
  /** How prom-client's cluster aggregator combines workers' values: Baton's counters and gauges add up. */
  readonly aggregator: 'sum';
  /** The family with its samples now (prom-client calls it at each scrape). */
  get(): Promise<{ name: string; help: string; type: MetricFamily['type']; aggregator: 'sum'; values: MetricFamily['samples'] }>;
  /** The counts are the system's own: a registry's reset() leaves them. */
  reset(): void;
}

/**
 * Baton's metrics for a prom-client registry of your own, next to your other metrics:
 *
 *   for (const m of promClientMetrics(system)) register.registerMetric(m);
 *
 * Each family reads a snapshot when scraped; the families of one scrape share one snapshot (it is
 * taken once per turn of the event loop). Counters keep their `_total` names: use the registry's
 * default Prometheus format (its OpenMetrics format would append `_total` again).
 */
export function promClientMetrics(system: { metricFamilies(): MetricFamily[] }): PromClientMetric[] {
  let cached: MetricFamily[] | undefined;
  const current = (): MetricFamily[] => {
    if (cached === undefined) {
      cached = system.metricFamilies();
      setImmediate(() => (cached = undefined));
    }
    return cached;
  };
  return system.metricFamilies().map(({ name, help, type }) => ({
    name,
    help,
    type,
    aggregator: 'sum' as const,
    get: async () => ({ name, help, type, aggregator: 'sum' as const, values: current().find((f) => f.name === name)?.samples ?? [] }),
    reset: () => undefined,
  }));
}
