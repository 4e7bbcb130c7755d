// Counters and histograms for the request path, as plain numbers per label set that the registry reads at scrape time.
// prom-client's own inc() and observe() check and hash their labels on every call, ~1-2 µs each, and a one-instance
// request made seven of them (four per request, three per batch): ~3 % of its CPU at c=1 (bench/README.md, session 7).
// These expose the same series to the same registry, through the metric interface the registry calls (get, reset).

import type { Metric, Registry } from 'prom-client'

/** A sample as the registry prints it: name{labels} value. */
interface Sample {
  metricName?: string
  labels: Record<string, string | number>
  value: number
}

/** One label set's numbers: a count, or a histogram's per-bucket counts with its sum and count. */
export interface Series {
  readonly labels: Record<string, string>
  /** Counter: the count. Histogram: observations. */
  count: number
  /** Histogram only: the sum of the observations. */
  sum: number
  /** Histogram only: observations per bucket (not cumulative), the last one past every bound (+Inf). */
  readonly buckets: Float64Array
}

abstract class Tally<N extends string> {
  private readonly series = new Map<string, Series>()

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly N[],
    private readonly bucketCount: number,
  ) {
    // The registry only calls get() and reset() (and reads name, help, type): what Metric needs of these.
    registry.registerMetric(this as unknown as Metric)
  }

  abstract readonly type: 'counter' | 'histogram'

  /** The series of these label values (in labelNames order), made on first use: hold it to skip the lookup. */
  at(...values: string[]): Series {
    const key = values.length === 1 ? values[0]! : values.join('\u0000')
    let s = this.series.get(key)
    if (s === undefined) {
      if (values.length !== this.labelNames.length) throw new Error(`${this.name} takes labels ${this.labelNames.join(', ')}, got ${values.length} values`)
      const labels: Record<string, string> = {}
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!))
      s = { labels, count: 0, sum: 0, buckets: new Float64Array(this.bucketCount) }
      this.series.set(key, s)
    }
    return s
  }

  /** Drops every series with these label values (a subset of labelNames): an unloaded version's. */
  remove(labels: Partial<Record<N, string>>): void {
    const given = Object.entries(labels) as [N, string][]
    for (const [key, s] of this.series) if (given.every(([n, v]) => s.labels[n] === v)) this.series.delete(key)
  }

  reset(): void {
    this.series.clear()
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }> {
    const values: Sample[] = []
    for (const s of this.series.values()) this.export(s, values)
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: 'sum', values })
  }

  protected abstract export(s: Series, into: Sample[]): void
}

export class TallyCounter<N extends string> extends Tally<N> {
  readonly type = 'counter'

  constructor(registry: Registry, name: string, help: string, labelNames: readonly N[]) {
    super(registry, name, help, labelNames, 0)
  }

  inc(...values: string[]): void {
    this.at(...values).count++
  }

  protected export(s: Series, into: Sample[]): void {
    into.push({ labels: s.labels, value: s.count })
  }
}

export class TallyHistogram<N extends string> extends Tally<N> {
  readonly type = 'histogram'

  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly N[],
    /** Upper bounds, ascending. */
    private readonly bounds: readonly number[],
  ) {
    super(registry, name, help, labelNames, bounds.length + 1)
  }

  observe(value: number, ...values: string[]): void {
    this.add(this.at(...values), value)
  }

  /** One observation into a series this histogram made (at()). */
  add(s: Series, value: number): void {
    const bounds = this.bounds
    let b = 0
    while (b < bounds.length && value > bounds[b]!) b++
    s.buckets[b]!++
    s.count++
    s.sum += value
  }

  protected export(s: Series, into: Sample[]): void {
    // As Prometheus reads a histogram: cumulative buckets by upper bound (le), then +Inf, sum and count.
    let cumulative = 0
    this.bounds.forEach((le, b) => {
      cumulative += s.buckets[b]!
      into.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value: cumulative })
    })
    into.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count })
    into.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum })
    into.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count })
  }
}
