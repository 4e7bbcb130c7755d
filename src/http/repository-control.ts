// What the repository control endpoints do (src/http/routes/repository.ts), as plain JSON outcomes: run on this
// process's models, or, in multi-process mode, on every worker's (src/cluster-control.ts), the outcomes combined into
// one answer: a success only when every worker succeeded, else the first failure, naming the worker.

import { errors, ServiceError, type ErrorCode } from '../errors.js'
import type { Log } from '../log.js'
import type { ModelSet, ModelStatus } from '../serving/models.js'
import type { WorkerOutcome } from '../cluster-control.js'

export type ControlAction = { op: 'index'; ready: boolean } | { op: 'load'; name: string } | { op: 'unload'; name: string }

export type IndexState = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE'

export interface IndexEntry {
  name: string
  version?: string
  state: IndexState
  reason: string
}

export interface LoadAnswer {
  name: string
  loaded: string[]
  unloaded: string[]
  serving?: string
}

export type ControlOutcome = { ok: true; body: IndexEntry[] | LoadAnswer } | { ok: false; code: ErrorCode; message: string }

/** One index entry per known version; a model with none is one UNAVAILABLE entry. */
function indexEntries(m: ModelStatus): IndexEntry[] {
  if (m.versions.length === 0) return [{ name: m.name, state: 'UNAVAILABLE', reason: m.unloaded ? 'unloaded' : 'not loaded' }]
  return m.versions.map((v) => {
    const state = v.state === 'ready' ? 'READY' : v.state === 'loading' ? 'LOADING' : v.state === 'unloading' ? 'UNLOADING' : 'UNAVAILABLE'
    return { name: m.name, version: String(v.version), state, reason: v.reason ?? '' }
  })
}

async function run(models: ModelSet, action: ControlAction, log: Log): Promise<IndexEntry[] | LoadAnswer> {
  if (action.op === 'index') {
    const entries = (await models.index()).flatMap(indexEntries)
    return action.ready ? entries.filter((e) => e.state === 'READY') : entries
  }
  const { name } = action
  if (action.op === 'unload') {
    const unloaded = await models.unload(name)
    log.info({ model: name, unloaded }, 'repository unload')
    return { name, loaded: [], unloaded: unloaded.map(String) }
  }
  if (!(await models.index()).some((m) => m.name === name)) throw errors.modelNotFound(`no model "${name}" in the repository`)
  const report = await models.load(name)
  const serving = models.status().find((m) => m.name === name)?.serving
  log.info({ model: name, ...report, serving }, 'repository load')
  if (report.failed.length > 0) {
    const why = report.failed.map((f) => (f.version > 0 ? `version ${f.version}: ${f.reason}` : f.reason)).join('; ')
    const still = serving === undefined ? 'nothing of this model is served' : `version ${serving} still serves`
    throw errors.loadFailed(`model "${name}" failed to load (${why}); ${still}`)
  }
  return { name, loaded: report.loaded.map(String), unloaded: report.unloaded.map(String), serving: serving === undefined ? undefined : String(serving) }
}

/** Runs `action` on this process's models; a ServiceError becomes a failed outcome (anything else still throws). */
export async function runControl(models: ModelSet, action: ControlAction, log: Log): Promise<ControlOutcome> {
  try {
    return { ok: true, body: await run(models, action, log) }
  } catch (err) {
    if (err instanceof ServiceError) return { ok: false, code: err.code, message: err.message }
    throw err
  }
}

/** The one answer for every worker's outcome: the first failure (naming its worker), else the combined success. */
export function combineOutcomes(action: ControlAction, outcomes: WorkerOutcome<ControlOutcome>[]): ControlOutcome {
  const n = outcomes.length
  for (const { pid, outcome } of outcomes) {
    if (outcome === undefined) return { ok: false, code: 'MHE_INTERNAL', message: `worker ${pid} (of ${n}) exited or failed before it answered; see its log` }
    if (!outcome.ok) return { ok: false, code: outcome.code, message: `worker ${pid} (of ${n}): ${outcome.message}` }
  }
  const bodies = outcomes.map((o) => (o.outcome as { ok: true; body: IndexEntry[] | LoadAnswer }).body)
  if (action.op !== 'index') return bodies[0] === undefined ? { ok: false, code: 'MHE_INTERNAL', message: 'no worker answered' } : { ok: true, body: bodies[0] }
  return { ok: true, body: mergeIndexes(outcomes.map((o) => o.pid), bodies as IndexEntry[][]) }
}

/** One index: an entry every worker agrees on as it is; where they differ, the least ready state with each worker's. */
function mergeIndexes(pids: number[], indexes: IndexEntry[][]): IndexEntry[] {
  const key = (e: IndexEntry): string => `${e.name}\u0000${e.version ?? ''}`
  const byKey = new Map<string, { entry: IndexEntry; states: string[]; differ: boolean }>()
  indexes.forEach((entries, w) => {
    for (const e of entries) {
      const seen = byKey.get(key(e))
      const state = `worker ${pids[w]}: ${e.state}${e.reason === '' ? '' : ` (${e.reason})`}`
      if (seen === undefined) {
        byKey.set(key(e), { entry: e, states: [state], differ: false })
        continue
      }
      seen.states.push(state)
      if (seen.entry.state !== e.state) seen.differ = true
      if (seen.entry.state === 'READY' && e.state !== 'READY') seen.entry = e
    }
  })
  return [...byKey.values()].map(({ entry, states, differ }) =>
    differ || states.length < indexes.length ? { ...entry, reason: `workers differ: ${states.join('; ')}` } : entry,
  )
}
