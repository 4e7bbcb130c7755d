// Picks the TensorFlow.js backend (MHE_BACKEND). 'auto' tries tensorflow-gpu (CUDA), webgpu (a real GPU adapter only),
// tensorflow (CPU build), wasm, cpu. The tensorflow and webgpu packages are optionalDependencies that often do not
// install or find no GPU; that is reported, not fatal.

import * as tf from '@tensorflow/tfjs-core'
// Importing a backend package registers it with tfjs-core.
import '@tensorflow/tfjs-backend-cpu'
import '@tensorflow/tfjs-backend-wasm'
import { checkBackend, type BackendRequest } from '../config.js'
import type { Log } from '../log.js'
import { describeAdapter, installWebGpu, probeAdapter } from './webgpu.js'
import { denseAddon } from './native-dense.js'

export type BackendName = Exclude<BackendRequest, 'auto'> // 'tensorflow' = tfjs-node-gpu or tfjs-node

export interface BackendAttempt {
  name: string
  ok: boolean
  reason?: string
}

export interface BackendChoice {
  /** The tfjs backend now active: 'tensorflow', 'webgpu', 'wasm' or 'cpu'. */
  name: string
  /** Whether it computes on a GPU (tensorflow-gpu, webgpu): the batching defaults depend on it (config.ts). */
  gpu: boolean
  /** The GPU adapter, where known (webgpu): "nvidia hopper, NVIDIA H200". */
  device?: string
  /** Candidates in the order tried; 'tensorflow-gpu' is @tensorflow/tfjs-node-gpu. */
  tried: BackendAttempt[]
  /** On wasm, where the native Dense kernel is on (native-dense.ts): the vectors it runs on, e.g. 'avx512f'. */
  nativeDense?: string
}

/** Why a candidate was skipped; `routine` = the usual state of a machine without that hardware or package. */
interface Skip {
  reason: string
  routine: boolean
}

interface Candidate {
  name: string
  /** The npm package that registers the backend, if not built in. */
  pkg?: string
  /** Work before setBackend: finds the hardware, registers the backend; returns why not, or a device name. */
  setup?: () => Promise<Skip | { device: string }>
  backend: string
  gpu: boolean
}

/** webgpu: only a real GPU adapter (the probe refuses none, fallback and software ones), then tfjs-backend-webgpu. */
async function setUpWebGpu(): Promise<Skip | { device: string }> {
  const probe = await probeAdapter()
  if (probe === undefined) return { reason: 'webgpu is not installed', routine: true }
  if (!probe.ok) return { reason: probe.reason, routine: true }
  if (tf.findBackendFactory('webgpu') === null) {
    try {
      await installWebGpu()
    } catch (err) {
      const reason = describe(err, '@tensorflow/tfjs-backend-webgpu')
      return { reason, routine: reason.endsWith('is not installed') }
    }
  }
  return { device: describeAdapter(probe.adapter) }
}

const TF_GPU: Candidate = { name: 'tensorflow-gpu', pkg: '@tensorflow/tfjs-node-gpu', backend: 'tensorflow', gpu: true }
const WEBGPU: Candidate = { name: 'webgpu', setup: setUpWebGpu, backend: 'webgpu', gpu: true }
const TF_CPU: Candidate = { name: 'tensorflow', pkg: '@tensorflow/tfjs-node', backend: 'tensorflow', gpu: false }
const WASM: Candidate = { name: 'wasm', backend: 'wasm', gpu: false }
const CPU: Candidate = { name: 'cpu', backend: 'cpu', gpu: false }

const PLANS: Record<BackendRequest, Candidate[]> = {
  auto: [TF_GPU, WEBGPU, TF_CPU, WASM, CPU],
  tensorflow: [TF_GPU, TF_CPU],
  webgpu: [WEBGPU],
  wasm: [WASM],
  cpu: [CPU],
}

const HINTS: Partial<Record<BackendName, string>> = {
  tensorflow: 'install @tensorflow/tfjs-node (or -gpu) or use MHE_BACKEND=wasm',
  webgpu: 'it needs a GPU with a Vulkan driver, the Vulkan loader (libvulkan1) and the packages webgpu and @tensorflow/tfjs-backend-webgpu (README, Backends)',
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

async function attempt(c: Candidate): Promise<Skip | { device?: string }> {
  const broken = (reason: string): Skip => ({ reason, routine: false })
  if (c.pkg !== undefined) {
    try {
      // A variable specifier keeps TypeScript from resolving a package that is usually absent.
      const spec: string = c.pkg
      await import(spec)
    } catch (err) {
      const reason = describe(err, c.pkg)
      return { reason, routine: reason.endsWith('is not installed') }
    }
    // tfjs-node-gpu and tfjs-node both register 'tensorflow'; the GPU build needs CUDA at init, which we cannot
    // check here beyond setBackend succeeding (no GPU on the machines this was written on).
  }
  const ready: Skip | { device?: string } = c.setup === undefined ? {} : await c.setup()
  if ('reason' in ready) return ready
  if (tf.findBackendFactory(c.backend) === null) return broken(`backend '${c.backend}' is not registered`)
  try {
    if (!(await tf.setBackend(c.backend))) return broken(`backend '${c.backend}' failed to initialise`)
    await tf.ready()
  } catch (err) {
    return broken(describe(err))
  }
  return ready
}

/**
 * Activates the requested backend, or for 'auto' the first that works, and logs the choice.
 * An explicit request that cannot be met throws an Error with a one-line message.
 * `nativeDense` (MHE_NATIVE_DENSE, default on): on wasm, plain Dense models run on native/dense.cc where it
 * is built; the log line says whether it is and why not.
 */
export async function selectBackend(requested: BackendRequest, log: Pick<Log, 'info' | 'warn'>, nativeDense = true): Promise<BackendChoice> {
  const plan = PLANS[checkBackend(requested)]
  const tried: BackendAttempt[] = []
  for (const c of plan) {
    const result = await attempt(c)
    if (!('reason' in result)) {
      tried.push({ name: c.name, ok: true })
      const choice: BackendChoice = { name: tf.getBackend(), gpu: c.gpu, ...(result.device !== undefined && { device: result.device }), tried }
      const on = result.device !== undefined ? ` on ${result.device}` : ''
      const dense = c !== WASM ? undefined : nativeDense ? denseAddon() : { reason: 'MHE_NATIVE_DENSE=false' }
      if (dense !== undefined && 'addon' in dense) choice.nativeDense = dense.addon.vectors
      const denseNote = dense === undefined ? '' : 'addon' in dense ? `, Dense layers native (${dense.addon.vectors})` : `, Dense layers on its own kernel: ${dense.reason}`
      log.info({ backend: choice.name, requested, gpu: choice.gpu, device: choice.device, tried, nativeDense: choice.nativeDense ?? false }, `tfjs backend: ${c.name}${on}${denseNote}`)
      if (requested === 'auto' && c === CPU) {
        log.warn({ tried }, 'tfjs backend: fell back to the slow pure-JavaScript cpu backend')
      }
      return choice
    }
    tried.push({ name: c.name, ok: false, reason: result.reason })
    // A package that is installed but broken deserves a warning; a missing optional one or no GPU is routine (the
    // info line of the winner lists every reason).
    if (requested === 'auto' && !result.routine) {
      log.warn({ backend: c.name, reason: result.reason }, `tfjs backend ${c.name} unavailable`)
    }
  }
  const reasons = tried.map((t) => t.reason).join('; ')
  const hint = HINTS[requested as BackendName] !== undefined ? `; ${HINTS[requested as BackendName]}` : ''
  throw new Error(`MHE_BACKEND=${requested}: ${reasons}${hint}`)
}
