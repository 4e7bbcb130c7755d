// Prometheus metrics (prom-client) on a registry of our own: HTTP traffic, batching, queue, rejections, tensors,
// model info, per model and version (requests, latency, batches, load time and failures, the serving version), and
// the process defaults (RSS, CPU, event-loop lag).

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { BatcherHooks } from './batcher.js'
import type { Service } from './service.js'
import type { ModelEvents } from './models.js'
import { SERVICE_STATES } from './lifecycle.js'
import { TallyCounter, TallyHistogram } from './tally.js'

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class Metrics implements ModelEvents {
  readonly registry = new Registry()
  // Per request and per batch: tallies (tally.ts), not prom-client's own metrics.
  private readonly requests = new TallyCounter(this.registry, 'mhe_http_requests_total', 'HTTP requests answered, by route, method and status', [
    'route',
    'method',
    'status',
  ])
  private readonly latency = new TallyHistogram(this.registry, 'mhe_http_request_duration_seconds', 'Time from request to response, by route', ['route'], LATENCY_BUCKETS)
  private readonly modelRequests = new TallyCounter(
    this.registry,
    'mhe_model_requests_total',
    'Prediction requests answered by a model version, by model, version and status',
    ['model', 'version', 'status'],
  )
  private readonly modelLatency = new TallyHistogram(
    this.registry,
    'mhe_model_request_duration_seconds',
    'Time from request to response of the predictions a model version computed',
    ['model', 'version'],
    LATENCY_BUCKETS,
  )
  private readonly loadSeconds = new Gauge({
    name: 'mhe_model_load_seconds',
    help: 'How long a model version took to read, check and warm up (its last load)',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  })
  private readonly loadFailures = new Counter({
    name: 'mhe_model_load_failures_total',
    help: 'Model versions that failed to load (what served before still serves)',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  })
  private readonly queueWait = new TallyHistogram(this.registry, 'mhe_queue_wait_seconds', 'Time an instance waited in the batch queue', ['model', 'version'], LATENCY_BUCKETS)
  private readonly compute = new TallyHistogram(this.registry, 'mhe_batch_compute_seconds', 'Model + top-k time per batch', ['model', 'version'], LATENCY_BUCKETS)
  private readonly batchSize = new TallyHistogram(this.registry, 'mhe_batch_size', 'Instances per model call', ['model', 'version'], [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
  private readonly rejections = new Counter({
    name: 'mhe_rejections_total',
    help: 'Requests refused, by reason (the error code)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  /** Feeds the batch histograms of one model version; give it to its batcher. */
  batchHooks(model: string, version: number): BatcherHooks {
    const v = String(version)
    const size = this.batchSize.at(model, v)
    const compute = this.compute.at(model, v)
    const wait = this.queueWait.at(model, v)
    return {
      onBatch: ({ size: n, waitMs, computeMs }) => {
        this.batchSize.add(size, n)
        this.compute.add(compute, computeMs / 1000)
        for (const w of waitMs) this.queueWait.add(wait, w / 1000)
      },
    }
  }

  loaded(model: string, version: number, seconds: number): void {
    this.loadSeconds.labels(model, String(version)).set(seconds)
  }

  loadFailed(model: string, version: number): void {
    this.loadFailures.labels(model, String(version)).inc()
    this.drop(model, version) // the empty batch series its hooks made
  }

  unloaded(model: string, version: number): void {
    this.drop(model, version)
  }

  /**
   * Drops a version's series once it is unloaded (its requests answered) or failed to load, so that a server swapping
   * all day does not export every version it ever served. Load failures stay: they count attempts, not a version.
   */
  private drop(model: string, version: number): void {
    const labels = { model, version: String(version) }
    for (const tally of [this.modelRequests, this.modelLatency, this.queueWait, this.compute, this.batchSize]) tally.remove(labels)
    this.loadSeconds.remove(labels)
  }

  /** One answer a model version computed (or refused after it was picked). */
  observeModelRequest(model: string, version: number, status: number, seconds: number): void {
    const v = String(version)
    this.modelRequests.inc(model, v, String(status))
    this.modelLatency.observe(seconds, model, v)
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'mhe_' })
  }

  /** Gauges read from the service at scrape time; the models' series appear once they are loaded. */
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
      help: 'Instances waiting for a batch, every model version together (what autoscalers read)',
      registers: [this.registry],
      collect() {
        this.set(service.models.loadedVersions().reduce((a, v) => a + v.loaded.batcher.depth, 0))
      },
    })
    new Gauge({
      name: 'mhe_model_queue_depth',
      help: 'Instances waiting for a batch, by model and version',
      labelNames: ['model', 'version'] as const,
      registers: [this.registry],
      collect() {
        this.reset()
        for (const v of service.models.loadedVersions()) this.labels(v.model, String(v.version)).set(v.loaded.batcher.depth)
      },
    })
    new Gauge({
      name: 'mhe_tfjs_tensors',
      help: 'Live TensorFlow.js tensors (constant when nothing leaks, but for the copy for small batches that a swapped-in version makes once traffic is light)',
      registers: [this.registry],
      collect() {
        // Every version runs in one tfjs (the engine thread's, or this thread's): each reports that one count.
        this.set(Math.max(0, ...service.models.loadedVersions().map((v) => v.loaded.engine.numTensors())))
      },
    })
    new Gauge({
      name: 'mhe_model_info',
      help: 'Each loaded model version (value 1): version is the bundle\'s own (mhe.json), model_version the served one',
      labelNames: ['name', 'version', 'backend', 'heads', 'num_labels', 'model', 'model_version'] as const,
      registers: [this.registry],
      collect() {
        this.reset()
        for (const v of service.models.loadedVersions()) {
          const { manifest: m, backend } = v.loaded
          this.labels(m.name, m.version, backend.name, m.heads.join('x'), String(m.numLabels), v.model, String(v.version)).set(1)
        }
      },
    })
    new Gauge({
      name: 'mhe_model_serving_version',
      help: 'The version of each model that unpinned requests go to (the newest ready one)',
      labelNames: ['model'] as const,
      registers: [this.registry],
      collect() {
        this.reset()
        for (const m of service.models.status()) if (m.serving !== undefined) this.labels(m.name).set(m.serving)
      },
    })
    new Gauge({
      name: 'mhe_model_versions',
      help: 'Model versions by state (loading, ready, unloading, failed)',
      labelNames: ['model', 'state'] as const,
      registers: [this.registry],
      collect() {
        this.reset()
        for (const m of service.models.status()) {
          for (const state of ['loading', 'ready', 'unloading', 'failed'] as const) this.labels(m.name, state).set(m.versions.filter((v) => v.state === state).length)
        }
      },
    })
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.requests.inc(route, method, String(status))
    this.latency.observe(seconds, route)
  }

  reject(reason: string): void {
    this.rejections.labels(reason).inc()
  }
}
