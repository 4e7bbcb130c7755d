// Picks the TensorFlow.js backend (MHE_BACKEND): tensorflow (CUDA, then CPU build) -> wasm -> cpu for 'auto'.
// The tensorflow packages are optionalDependencies that often do not install; their absence is reported, not fatal.

import * as tf from '@tensorflow/tfjs-core'
// Importing a backend package registers it with tfjs-core.
import '@tensorflow/tfjs-backend-cpu'
import '@tensorflow/tfjs-backend-wasm'
import { checkBackend, type BackendRequest } from '../config.js'
import type { Log } from '../log.js'

export type BackendName = Exclude<BackendRequest, 'auto'> // 'tensorflow' = tfjs-node-gpu or tfjs-node

export interface BackendAttempt {
  name: string
  ok: boolean
  reason?: string
}

export interface BackendChoice {
  /** The tfjs backend now active: 'tensorflow', 'wasm' or 'cpu'. */
  name: string
  /** Candidates in the order tried; 'tensorflow-gpu' is @tensorflow/tfjs-node-gpu. */
  tried: BackendAttempt[]
}

interface Candidate {
  name: string
  /** The npm package that registers the backend, if not built in. */
  pkg?: string
  backend: string
}

const TF_GPU: Candidate = { name: 'tensorflow-gpu', pkg: '@tensorflow/tfjs-node-gpu', backend: 'tensorflow' }
const TF_CPU: Candidate = { name: 'tensorflow', pkg: '@tensorflow/tfjs-node', backend: 'tensorflow' }
const WASM: Candidate = { name: 'wasm', backend: 'wasm' }
const CPU: Candidate = { name: 'cpu', backend: 'cpu' }

const PLANS: Record<BackendRequest, Candidate[]> = {
  auto: [TF_GPU, TF_CPU, WASM, CPU],
  tensorflow: [TF_GPU, TF_CPU],
  wasm: [WASM],
  cpu: [CPU],
}

/** One line from an import or init failure: "not installed" for a missing package, else the error's first line. */
function describe(err: unknown, pkg?: string): string {
  const e = err as { code?: string; message?: string }
  // Loader hooks (tsx, tap) may rewrap the error and drop its code, so the message is checked too.
  const notFound = e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND' || /Cannot find (package|module)/.test(e.message ?? '')
  if (pkg !== undefined && notFound && e.message?.includes(`'${pkg}'`)) {
    return `${pkg} is not installed`
  }
  const first = (e.message ?? String(err)).split('\n')[0]!.trim()
  return pkg === undefined ? first : `${pkg} failed to load: ${first}`
}

async function attempt(c: Candidate): Promise<string | undefined> {
  if (c.pkg !== undefined) {
    try {
      // A variable specifier keeps TypeScript from resolving a package that is usually absent.
      const spec: string = c.pkg
      await import(spec)
    } catch (err) {
      return describe(err, c.pkg)
    }
    // tfjs-node-gpu and tfjs-node both register 'tensorflow'; the GPU build needs CUDA at init, which we cannot
    // check here beyond setBackend succeeding (no GPU on the machines this was written on).
  }
  if (tf.findBackendFactory(c.backend) === null) return `backend '${c.backend}' is not registered`
  try {
    if (!(await tf.setBackend(c.backend))) return `backend '${c.backend}' failed to initialise`
    await tf.ready()
  } catch (err) {
    return describe(err)
  }
  return undefined
}

/**
 * Activates the requested backend, or for 'auto' the first that works, and logs the choice.
 * An explicit request that cannot be met throws an Error with a one-line message.
 */
export async function selectBackend(requested: BackendRequest, log: Pick<Log, 'info' | 'warn'>): Promise<BackendChoice> {
  const plan = PLANS[checkBackend(requested)]
  const tried: BackendAttempt[] = []
  for (const c of plan) {
    const reason = await attempt(c)
    if (reason === undefined) {
      tried.push({ name: c.name, ok: true })
      const choice = { name: tf.getBackend(), tried }
      log.info({ backend: choice.name, requested, tried }, `tfjs backend: ${c.name}`)
      if (requested === 'auto' && c === CPU) {
        log.warn({ tried }, 'tfjs backend: fell back to the slow pure-JavaScript cpu backend')
      }
      return choice
    }
    tried.push({ name: c.name, ok: false, reason })
    // A package that is installed but broken deserves a warning; a missing optional one is routine.
    if (requested === 'auto' && !reason.endsWith('is not installed')) {
      log.warn({ backend: c.name, reason }, `tfjs backend ${c.name} unavailable`)
    }
  }
  const reasons = tried.map((t) => t.reason).join('; ')
  const hint = requested === 'tensorflow' ? '; install @tensorflow/tfjs-node (or -gpu) or use MHE_BACKEND=wasm' : ''
  throw new Error(`MHE_BACKEND=${requested}: ${reasons}${hint}`)
}
