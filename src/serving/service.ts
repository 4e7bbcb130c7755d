// The prediction service behind the HTTP layer: the models it serves (models.ts: one bundle, MHE_MODEL, or a
// repository of models and versions, MHE_MODEL_REPOSITORY), optional polling of the repository, and the service's
// state (the Lifecycle's). Knows nothing of HTTP.

import type { Config } from '../config.js'
import type { ModelEngine } from '../engine/model-engine.js'
import type { Manifest } from '../bundle/manifest.js'
import type { Batcher } from './batcher.js'
import type { Candidate } from '../mhe/codec.js'
import type { Log } from '../log.js'
import { Lifecycle, type ServiceState } from './lifecycle.js'
import { bundleSource, ModelSet, repositorySource, type ModelEvents, type ModelSource } from './models.js'
import type { Instance, Loaded } from './load.js'

export type { Instance, Loaded } from './load.js'

export class Service {
  readonly lifecycle = new Lifecycle()
  readonly models: ModelSet
  private starting: Promise<void> | undefined
  private pollTimer: NodeJS.Timeout | undefined
  private polling: Promise<void> | undefined

  constructor(
    private readonly config: Config,
    private readonly log: Log,
    events?: ModelEvents,
    source: ModelSource = config.modelRepository !== '' ? repositorySource(config.modelRepository) : bundleSource(config.modelDir),
  ) {
    this.models = new ModelSet({ config, log, source, events })
    // Nothing can be predicted any more: fail readiness and liveness so the orchestrator replaces the process.
    this.models.onEngineFailure = () => this.lifecycle.to('failed')
  }

  get state(): ServiceState {
    return this.lifecycle.state
  }

  /** The default model's serving version, once start() has loaded it; undefined while starting or after a failed start. */
  get loaded(): Loaded | undefined {
    return this.models.peekDefault()?.loaded
  }

  get engine(): ModelEngine {
    return this.model().engine
  }

  get batcher(): Batcher<Instance, Candidate[]> {
    return this.model().batcher
  }

  get manifest(): Manifest {
    return this.model().manifest
  }

  /**
   * Loads the models and warms them up, then the service is ready (unless a drain began meanwhile). Rejects with the
   * load's error (a BundleError names the file) and leaves the service failed when nothing could be loaded. Call once.
   */
  start(): Promise<void> {
    this.starting ??= this.load()
    return this.starting
  }

  private async load(): Promise<void> {
    try {
      await this.models.start()
    } catch (err) {
      this.lifecycle.to('failed')
      throw err
    }
    this.lifecycle.to('ready')
    if (this.config.modelRepository !== '' && this.config.repositoryPollS > 0 && this.state === 'ready') this.schedulePoll()
  }

  /** The next repository scan, MHE_REPOSITORY_POLL_S after the last one ended (never two at once). */
  private schedulePoll(): void {
    this.pollTimer = setTimeout(() => {
      this.polling = this.models.poll().catch((err: unknown) => this.log.error({ err }, 'model repository poll failed'))
      void this.polling.then(() => {
        if (this.state === 'ready' || this.state === 'draining') this.schedulePoll()
      })
    }, this.config.repositoryPollS * 1000)
    this.pollTimer.unref()
  }

  /** Stops taking work, answers everything queued or running, then frees the models (once a load in progress ends). */
  async close(): Promise<void> {
    this.lifecycle.to('closing')
    clearTimeout(this.pollTimer)
    await this.starting?.catch(() => undefined) // its failure was reported to whoever started it
    await this.polling
    await this.models.close()
  }

  private model(): Loaded {
    const loaded = this.loaded
    if (loaded === undefined) throw new Error(`the model is not loaded (service ${this.state})`)
    return loaded
  }
}
