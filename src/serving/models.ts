// The models and versions this process serves, and how they change while it serves: a version loads and warms up
// beside the one serving (on the same engine thread, with a batcher of its own), takes new requests the moment it is ready, and the
// version it replaces is unloaded only once every request that had picked it has been answered. A version that
// fails to load changes nothing that serves; why it failed is kept and reported. Knows nothing of HTTP.

import { join } from 'node:path'
import { BACKENDS, type BackendRequest, type Config } from '../config.js'
import { BundleError, errors } from '../errors.js'
import type { Log } from '../log.js'
import { firstLine, readBundleFiles } from '../bundle/files.js'
import { DEFAULT_POLICY, folderStamp, incompleteReason, listModels, scanModel, type ModelFolder } from '../bundle/repository.js'
import type { BatcherHooks } from './batcher.js'
import { loadBundle, unloadBundle, type Loaded } from './load.js'
import { EngineHost } from '../engine/thread-host.js'

/** Where the models come from: a repository folder, or the one bundle of MHE_MODEL (served as version 1). */
export interface ModelSource {
  /** The model names there now. */
  names(): Promise<string[]>
  /** One model's versions and the ones its policy serves; BundleError if the model is gone or its policy is bad. */
  scan(name: string): Promise<ModelFolder>
  versionDir(name: string, version: number): string
}

export function repositorySource(dir: string): ModelSource {
  return {
    names: () => listModels(dir),
    scan: (name) => scanModel(dir, name),
    versionDir: (name, version) => join(dir, name, String(version)),
  }
}

/** MHE_MODEL: one bundle, served under its manifest's name as version 1. */
export function bundleSource(dir: string): ModelSource {
  let name: string | undefined
  return {
    names: async () => [(name ??= (await readBundleFiles(dir)).manifest.name)],
    scan: async (n) => ({ name: n, dir, policy: DEFAULT_POLICY, available: [1], wanted: [1] }),
    versionDir: () => dir,
  }
}

/** What ModelSet reports to metrics and logs. */
export interface ModelEvents {
  /** The batcher hooks of one version (its batch sizes, waits and compute times). */
  batchHooks(model: string, version: number): BatcherHooks | undefined
  loaded(model: string, version: number, seconds: number): void
  loadFailed(model: string, version: number): void
  /** The version is unloaded: every request it took is answered. */
  unloaded(model: string, version: number): void
}

export type VersionState = 'loading' | 'ready' | 'unloading' | 'failed'

/** One loaded version: what it serves, and the requests that picked it and are not answered yet (its leases). */
export class ServedVersion {
  state: 'ready' | 'unloading' = 'ready'
  private leases = 0
  private idleWaiters: (() => void)[] = []

  constructor(
    readonly model: string,
    readonly version: number,
    readonly loaded: Loaded,
    readonly loadSeconds: number,
  ) {}

  /** Requests that picked this version and are not answered yet. */
  get inFlight(): number {
    return this.leases
  }

  /** Call once per acquire, when the request's answer is computed (or it failed). */
  release(): void {
    this.leases--
    if (this.leases === 0) for (const w of this.idleWaiters.splice(0)) w()
  }

  /** @internal ModelSet.acquire */
  lease(): this {
    this.leases++
    return this
  }

  /** Resolves once no request holds this version. */
  idle(): Promise<void> {
    return this.leases === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve))
  }
}

/** Why a version is not served, kept until it loads or is tried again. */
interface Failure {
  reason: string
  /** The version folder's files when it failed (folderStamp): polling retries only once they change. */
  stamp: string
}

interface ModelEntry {
  name: string
  versions: Map<number, ServedVersion>
  loading: Set<number>
  failed: Map<number, Failure>
  /** Unloaded on request: polling leaves it alone until a load request. */
  unloaded: boolean
  /** Loads and unloads of one model run one after another. */
  queue: Promise<unknown>
}

/** A version's state, as GET /models and the repository index show it. */
export interface VersionStatus {
  version: number
  state: VersionState
  /** Why it failed to load. */
  reason?: string
  /** The bundle's own version string (mhe.json "version"), once loaded. */
  bundleVersion?: string
}

export interface ModelStatus {
  name: string
  /** The version unpinned requests go to (the newest ready one). */
  serving?: number
  isDefault: boolean
  unloaded: boolean
  versions: VersionStatus[]
}

/** The outcome of one load or sync of a model. */
export interface SyncReport {
  loaded: number[]
  failed: { version: number; reason: string; error: Error }[]
  unloaded: number[]
  /** Versions skipped because their files are still being written (polling). */
  incomplete: number[]
}

export interface ModelSetOptions {
  config: Config
  log: Log
  source: ModelSource
  events?: ModelEvents
}

export class ModelSet {
  private readonly models = new Map<string, ModelEntry>()
  private readonly config: Config
  private readonly log: Log
  private readonly source: ModelSource
  private readonly events: ModelEvents | undefined
  /** The backend the first load chose: later loads ask for it by name instead of probing every candidate again. */
  private backend: BackendRequest
  private closed = false
  /** start() is loading what the repository holds: the service is not ready, so nothing is being served yet. */
  private starting = false
  /** The engine thread every version loads onto (MHE_ENGINE_THREAD), started with the first load. */
  private host: Promise<EngineHost> | undefined
  /** Called when a loaded version's engine dies (the service turns failed). */
  onEngineFailure: ((err: Error) => void) | undefined

  constructor(opts: ModelSetOptions) {
    this.config = opts.config
    this.log = opts.log
    this.source = opts.source
    this.events = opts.events
    this.backend = opts.config.backend
  }

  /** Loads every model's versions as its policy says; rejects if none at all loaded (the reasons in the message). */
  async start(): Promise<void> {
    const names = await this.source.names()
    const wantDefault = this.config.modelRepository !== '' ? this.config.defaultModel : ''
    if (wantDefault !== '' && !names.includes(wantDefault)) {
      throw new BundleError(`${this.config.modelRepository}/${wantDefault}`, `MHE_DEFAULT_MODEL names a model the repository does not hold (it holds: ${names.join(', ') || 'none'})`)
    }
    const failed: SyncReport['failed'] = []
    this.starting = true
    try {
      for (const name of names) failed.push(...(await this.sync(name, { poll: false })).failed)
    } finally {
      this.starting = false
    }
    if (![...this.models.values()].some((m) => this.serving(m) !== undefined)) {
      if (names.length === 0) throw new BundleError(this.config.modelRepository, 'the model repository holds no model (expected DIR/<name>/<version>/ bundle folders)')
      // One bundle (MHE_MODEL): its own error, as before repositories existed.
      if (failed.length === 1 && this.config.modelRepository === '') throw failed[0]!.error
      const reasons = failed.map((f) => f.reason).join('; ') || 'no version folders'
      throw new BundleError(this.config.modelRepository || this.config.modelDir, `no model version could be loaded: ${reasons}`)
    }
  }

  /** The default model's name: MHE_DEFAULT_MODEL, else the only model; undefined when there are several. */
  defaultName(): string | undefined {
    if (this.config.modelRepository !== '' && this.config.defaultModel !== '') return this.config.defaultModel
    const names = [...this.models.keys()]
    return names.length === 1 ? names[0] : undefined
  }

  /**
   * The version a request goes to, leased until the caller calls release(): `version` pinned, or the newest ready.
   * Throws a ServiceError: 404 for a model or version not served, 503 while it is still loading.
   */
  acquire(name: string | undefined, version?: number): ServedVersion {
    const modelName = name ?? this.defaultName()
    if (modelName === undefined) {
      throw errors.modelNotFound(`this server serves several models (${[...this.models.keys()].join(', ')}): name one (POST /models/{name}/predict) or set MHE_DEFAULT_MODEL`)
    }
    const m = this.models.get(modelName)
    if (m === undefined) throw errors.modelNotFound(`unknown model "${modelName}" (served: ${[...this.models.keys()].join(', ') || 'none'})`)
    if (version !== undefined) {
      const v = m.versions.get(version)
      if (v?.state === 'ready') return v.lease()
      if (m.loading.has(version)) throw errors.notReady(`version ${version} of model "${modelName}" is loading`)
      const ready = this.readyVersions(m)
      throw errors.modelNotFound(`model "${modelName}" has no ready version ${version} (ready: ${ready.join(', ') || 'none'})`)
    }
    const v = this.serving(m)
    if (v !== undefined) return v.lease()
    if (m.loading.size > 0) throw errors.notReady(`model "${modelName}" is loading`)
    throw errors.modelNotFound(m.unloaded ? `model "${modelName}" is unloaded (load it with POST /v2/repository/models/${modelName}/load)` : `model "${modelName}" has no ready version`)
  }

  /** The version acquire(name, version) would pick now, without a lease or an error (admission sizes its queue room). */
  peek(name: string | undefined, version?: number): ServedVersion | undefined {
    const modelName = name ?? this.defaultName()
    const m = modelName === undefined ? undefined : this.models.get(modelName)
    if (m === undefined) return undefined
    if (version === undefined) return this.serving(m)
    const v = m.versions.get(version)
    return v?.state === 'ready' ? v : undefined
  }

  /** The default model's serving version without a lease (metadata, metrics); after close, the last one served. */
  peekDefault(): ServedVersion | undefined {
    const name = this.defaultName()
    const m = name === undefined ? undefined : this.models.get(name)
    if (m === undefined) return undefined
    return this.serving(m) ?? [...m.versions.values()].at(-1)
  }

  /** Every loaded version, for metrics. */
  loadedVersions(): ServedVersion[] {
    return [...this.models.values()].flatMap((m) => [...m.versions.values()])
  }

  status(): ModelStatus[] {
    const def = this.defaultName()
    return [...this.models.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((m) => {
        const versions = new Map<number, VersionStatus>()
        for (const [v, f] of m.failed) versions.set(v, { version: v, state: 'failed', reason: f.reason })
        for (const v of m.loading) versions.set(v, { version: v, state: 'loading' })
        for (const [v, s] of m.versions) versions.set(v, { version: v, state: s.state, bundleVersion: s.loaded.manifest.version })
        return {
          name: m.name,
          serving: this.serving(m)?.version,
          isDefault: m.name === def,
          unloaded: m.unloaded,
          versions: [...versions.values()].sort((a, b) => a.version - b.version),
        }
      })
  }

  /** The repository's models (also those not loaded), for the index: names from the source plus those served. */
  async index(): Promise<ModelStatus[]> {
    const served = new Map(this.status().map((s) => [s.name, s]))
    for (const name of await this.source.names()) {
      if (!served.has(name)) served.set(name, { name, isDefault: false, unloaded: true, versions: [] })
    }
    return [...served.values()].sort((a, b) => a.name.localeCompare(b.name))
  }

  /**
   * Loads what the model's policy serves and is not loaded yet (and versions that failed before: their files may be
   * fixed), then unloads versions the policy no longer serves. Resolves once done; the report says what failed.
   */
  load(name: string): Promise<SyncReport> {
    const m = this.models.get(name)
    if (m !== undefined) m.unloaded = false
    return this.sync(name, { poll: false, retryFailed: true })
  }

  /** Unloads every version of the model, each once its requests are answered; polling leaves it unloaded. */
  unload(name: string): Promise<number[]> {
    const m = this.models.get(name)
    if (m === undefined || (m.versions.size === 0 && m.loading.size === 0 && m.unloaded)) {
      return Promise.reject(errors.modelNotFound(`model "${name}" is not loaded`))
    }
    m.unloaded = true
    return this.serialize(m, async () => {
      const versions = [...m.versions.keys()]
      await Promise.all(versions.map((v) => this.unloadVersion(m, v)))
      return versions
    })
  }

  /** One polling pass: new models and versions whose files are complete load, removed ones unload. */
  async poll(): Promise<void> {
    let names: string[]
    try {
      names = await this.source.names()
    } catch (err) {
      this.log.warn({ err: firstLine(err) }, 'model repository scan failed; keeping what is served')
      return
    }
    for (const name of names) {
      if (this.models.get(name)?.unloaded === true) continue
      await this.sync(name, { poll: true })
    }
    for (const m of this.models.values()) {
      if (names.includes(m.name) || m.versions.size === 0) continue
      this.log.info({ model: m.name }, 'model folder removed from the repository: unloading it')
      await this.serialize(m, () => Promise.all([...m.versions.keys()].map((v) => this.unloadVersion(m, v))))
    }
  }

  /** Stops everything: every version answers what it holds, then is freed. Versions stay listed (closed). */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all(
      [...this.models.values()].map(async (m) => {
        await m.queue.catch(() => undefined)
        await Promise.all([...m.versions.values()].map(async (v) => {
          v.state = 'unloading'
          await v.idle() // answers look label names up until they are sent
          await unloadBundle(v.loaded)
        }))
      }),
    )
    await (await this.host?.catch(() => undefined))?.close()
  }

  /** The shared engine thread (started on first use; a failed start is tried again by the next load). */
  private engineHost(): Promise<EngineHost> | undefined {
    if (!this.config.engineThread) return undefined
    this.host ??= EngineHost.start(this.backend, this.log, this.config.nativeDense).catch((err: unknown) => {
      this.host = undefined
      throw err
    })
    return this.host
  }

  private entry(name: string): ModelEntry {
    let m = this.models.get(name)
    if (m === undefined) {
      m = { name, versions: new Map(), loading: new Set(), failed: new Map(), unloaded: false, queue: Promise.resolve() }
      this.models.set(name, m)
    }
    return m
  }

  private serialize<T>(m: ModelEntry, op: () => Promise<T>): Promise<T> {
    const next = m.queue.catch(() => undefined).then(op)
    m.queue = next
    return next
  }

  private readyVersions(m: ModelEntry): number[] {
    return [...m.versions.values()].filter((v) => v.state === 'ready').map((v) => v.version).sort((a, b) => a - b)
  }

  /** Unpinned requests go to the newest ready version. */
  private serving(m: ModelEntry): ServedVersion | undefined {
    let best: ServedVersion | undefined
    for (const v of m.versions.values()) if (v.state === 'ready' && (best === undefined || v.version > best.version)) best = v
    return best
  }

  private sync(name: string, opts: { poll: boolean; retryFailed?: boolean }): Promise<SyncReport> {
    const m = this.entry(name)
    return this.serialize(m, async () => {
      const report: SyncReport = { loaded: [], failed: [], unloaded: [], incomplete: [] }
      if (this.closed) return report
      let folder: ModelFolder
      try {
        folder = await this.source.scan(name)
      } catch (err) {
        const reason = firstLine(err)
        this.log.warn({ model: name, reason }, 'model folder cannot be read; keeping what is served')
        report.failed.push({ version: 0, reason, error: err instanceof Error ? err : new Error(reason) })
        return report
      }
      // Newest first: the version that will serve is ready soonest.
      for (const version of [...folder.wanted].reverse()) {
        if (m.versions.has(version) || this.closed) continue
        const dir = this.source.versionDir(name, version)
        const failure = m.failed.get(version)
        if (opts.poll) {
          const stamp = await folderStamp(dir)
          if (failure !== undefined && failure.stamp === stamp) continue // tried already; nothing changed since
          const incomplete = await incompleteReason(dir)
          if (incomplete !== undefined) {
            report.incomplete.push(version) // a writer is at work: the next pass looks again
            continue
          }
        } else if (failure !== undefined && opts.retryFailed !== true) {
          continue
        }
        const error = await this.loadVersion(m, version, dir)
        if (error === undefined) report.loaded.push(version)
        else report.failed.push({ version, reason: firstLine(error), error })
      }
      // Versions the policy no longer serves go, but only once one it serves is ready: a failed load replaces nothing.
      if (folder.wanted.some((v) => m.versions.get(v)?.state === 'ready')) {
        const gone = [...m.versions.keys()].filter((v) => !folder.wanted.includes(v))
        await Promise.all(gone.map((v) => this.unloadVersion(m, v)))
        report.unloaded.push(...gone)
      }
      for (const v of m.failed.keys()) if (!folder.available.includes(v)) m.failed.delete(v)
      return report
    })
  }

  /** Loads one version beside what serves; undefined on success, else why it failed (and nothing changed). */
  private async loadVersion(m: ModelEntry, version: number, dir: string): Promise<Error | undefined> {
    m.loading.add(version)
    const t0 = performance.now()
    try {
      const host = await this.engineHost()
      // Loaded while requests are answered: its copy for small batches waits for light traffic (split-engine.ts).
      const beside = !this.starting && [...this.models.values()].some((other) => this.serving(other) !== undefined)
      const inlineCopy = beside ? 'when-light' : 'now'
      const loaded = await loadBundle({ dir, backend: this.backend, config: this.config, log: this.log, hooks: this.events?.batchHooks(m.name, version), host, inlineCopy })
      const seconds = (performance.now() - t0) / 1000
      if (this.closed) {
        await unloadBundle(loaded)
        return new Error('the server is closing')
      }
      this.backend = BACKENDS.find((b) => b === loaded.backend.name) ?? this.backend
      const served = new ServedVersion(m.name, version, loaded, seconds)
      loaded.engine.onFailure = (err) => this.onEngineFailure?.(err)
      const before = this.serving(m)?.version
      m.versions.set(version, served)
      m.failed.delete(version)
      this.events?.loaded(m.name, version, seconds)
      const man = loaded.manifest
      this.log.info(
        { model: m.name, version, bundleVersion: man.version, heads: man.heads, numLabels: man.numLabels, featureDim: man.featureDim, backend: loaded.backend.name, ...loaded.batching, engineThread: this.config.engineThread, loadMs: Math.round(seconds * 1000) },
        'model version loaded and warmed up',
      )
      const after = this.serving(m)?.version
      if (after !== before) this.log.info({ model: m.name, version: after, previous: before }, 'serving version switched')
      return undefined
    } catch (err) {
      const reason = firstLine(err)
      m.failed.set(version, { reason, stamp: await folderStamp(dir) })
      this.events?.loadFailed(m.name, version)
      this.log.warn({ model: m.name, version, reason }, 'model version failed to load; what was served still is')
      return err instanceof Error ? err : new Error(reason)
    } finally {
      m.loading.delete(version)
    }
  }

  /** Takes the version out of service at once; frees it once every request holding it is answered. */
  private async unloadVersion(m: ModelEntry, version: number): Promise<void> {
    const v = m.versions.get(version)
    if (v === undefined || v.state === 'unloading') return
    v.state = 'unloading'
    const t0 = performance.now()
    const inFlight = v.inFlight
    await v.idle()
    await unloadBundle(v.loaded)
    m.versions.delete(version)
    this.events?.unloaded(m.name, version)
    this.log.info({ model: m.name, version, inFlight, waitedMs: Math.round(performance.now() - t0) }, 'model version unloaded')
  }
}
