// Prometheus metrics (prom-client) on a registry of our own: HTTP traffic, batching, queue, rejections, tensors,
// model info, and the process defaults (RSS, CPU, event-loop lag).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { BatcherHooks } from './batcher.js'
import type { Service } from './service.js'
import { SERVICE_STATES } from './lifecycle.js'

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class Metrics {
  readonly registry = new Registry()
  private readonly requests = new Counter({
    name: 'mhe_http_requests_total',
    help: 'HTTP requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  })
  private readonly latency = new Histogram({
    name: 'mhe_http_request_duration_seconds',
    help: 'Time from request to response, by route',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  private readonly queueWait = new Histogram({
    name: 'mhe_queue_wait_seconds',
    help: 'Time an instance waited in the batch queue',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  private readonly compute = new Histogram({
    name: 'mhe_batch_compute_seconds',
    help: 'Model + top-k time per batch',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  })
  private readonly batchSize = new Histogram({
    name: 'mhe_batch_size',
    help: 'Instances per model call',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  })
  private readonly rejections = new Counter({
    name: 'mhe_rejections_total',
    help: 'Requests refused, by reason (the error code)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  /** Feeds the batch histograms; give it to the batcher. */
  readonly hooks: BatcherHooks = {
    onBatch: ({ size, waitMs, computeMs }) => {
      this.batchSize.observe(size)
      this.compute.observe(computeMs / 1000)
      for (const w of waitMs) this.queueWait.observe(w / 1000)
    },
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'mhe_' })
  }

  /** Gauges read from the service at scrape time; the model's series appear once it is loaded. */
  bindService(service: Service): void {
    new Gauge({
      name: 'mhe_service_state',
      help: `The service state: 1 for the current one of ${SERVICE_STATES.join(', ')}`,
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        for (const s of SERVICE_STATES) this.labels(s).set(s === service.state ? 1 : 0)
      },
    })
    new Gauge({
      name: 'mhe_queue_depth',
      help: 'Instances waiting for a batch',
      registers: [this.registry],
      collect() {
        this.set(service.loaded?.batcher.depth ?? 0)
      },
    })
    new Gauge({
      name: 'mhe_tfjs_tensors',
      help: 'Live TensorFlow.js tensors (constant when nothing leaks)',
      registers: [this.registry],
      collect() {
        this.set(service.loaded?.engine.numTensors() ?? 0)
      },
    })
    new Gauge({
      name: 'mhe_model_info',
      help: 'The model served (value 1)',
      labelNames: ['name', 'version', 'backend', 'heads', 'num_labels'] as const,
      registers: [this.registry],
      collect() {
        const loaded = service.loaded
        if (loaded === undefined) return
        const m = loaded.manifest
        this.labels(m.name, m.version, loaded.backend.name, m.heads.join('x'), String(m.numLabels)).set(1)
      },
    })
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.requests.labels(route, method, String(status)).inc()
    this.latency.labels(route).observe(seconds)
  }

  reject(reason: string): void {
    this.rejections.labels(reason).inc()
  }
}
