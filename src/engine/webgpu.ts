// The WebGPU backend (MHE_BACKEND=webgpu): Dawn (npm `webgpu`) gives Node a navigator.gpu and
// @tensorflow/tfjs-backend-webgpu runs tfjs on it. Both are optionalDependencies. Here: finding a real GPU adapter,
// registering the backend, and the WebGPU rules the engine must respect (the storage-binding cap).

import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { backend as activeBackend } from '@tensorflow/tfjs-core'

/**
 * Largest storage buffer binding Dawn grants on the GPUs seen (an NVIDIA H200 through Vulkan): 2 GiB - 4 bytes.
 * A tensor bigger than the device's binding fails WebGPU validation instead of falling back, so the engine refuses
 * such weights at load and splits batches to keep activations under it. The live device's limit wins when known.
 */
export const STORAGE_BINDING_LIMIT = 2147483644

/** What the probe learns of the adapter Dawn would give tfjs. */
export interface AdapterInfo {
  vendor: string
  architecture: string
  device: string
  description: string
  isFallbackAdapter: boolean
  maxStorageBufferBindingSize: number
  maxBufferSize: number
}

export type Probe = { ok: true; adapter: AdapterInfo } | { ok: false; reason: string }

// Software Vulkan and WebGPU implementations: a "GPU" adapter that computes on the CPU, slower than wasm.
const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software|microsoft basic render/i

/** Why an adapter is not a real GPU (a fallback or software one), or undefined if it is one. Pure: tested on CPU. */
export function softwareAdapterReason(a: Pick<AdapterInfo, 'vendor' | 'architecture' | 'device' | 'description' | 'isFallbackAdapter'>): string | undefined {
  const name = describeAdapter(a)
  if (a.isFallbackAdapter) return `only a fallback (software) adapter: ${name}`
  if (SOFTWARE.test([a.vendor, a.architecture, a.device, a.description].join(' '))) return `only a software adapter: ${name}`
  return undefined
}

/** "nvidia hopper, NVIDIA H200" from whichever fields the adapter fills. */
export function describeAdapter(a: Pick<AdapterInfo, 'vendor' | 'architecture' | 'device' | 'description'>): string {
  const head = [a.vendor, a.architecture].filter((s) => s !== '').join(' ')
  const tail = a.description !== '' ? a.description : a.device
  return [head, tail].filter((s) => s !== '').join(', ') || 'unnamed adapter'
}

/** One line out of Dawn's stderr (it reports why it found no adapter there, from native code). */
export function dawnReason(stderr: string): string | undefined {
  for (const raw of stderr.split('\n')) {
    const line = raw.trim().replace(/^(Warning|Error):\s*/, '')
    // Skip Dawn's source locations ("at InitializeImpl (.../PhysicalDeviceVk.cpp:257)") and context lines.
    if (line === '' || line.startsWith('at ') || line.startsWith('- ')) continue
    return line
  }
  return undefined
}

// Runs in a child node: a crash or a hang in a GPU driver then costs a skipped candidate, not the server, and Dawn's
// native warnings (printed to stderr even when all goes well) become part of our one-line reason instead of noise.
const PROBE = `
const { create } = await import(process.argv[1]);
const a = await create([]).requestAdapter({ powerPreference: 'high-performance' });
const i = a === null ? null : (a.info ?? {});
process.stdout.write(JSON.stringify(a === null ? null : {
  vendor: i.vendor ?? '', architecture: i.architecture ?? '', device: i.device ?? '', description: i.description ?? '',
  isFallbackAdapter: Boolean(i.isFallbackAdapter ?? a.isFallbackAdapter),
  maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize, maxBufferSize: a.limits.maxBufferSize }));
`

const PROBE_TIMEOUT_MS = 30_000

/** Asks Dawn, in a child process, for the adapter tfjs would get; undefined when `webgpu` is not installed. */
export async function probeAdapter(): Promise<Probe | undefined> {
  let url: string
  try {
    url = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href
  } catch {
    return undefined
  }
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '--eval', PROBE, url],
      { timeout: PROBE_TIMEOUT_MS, maxBuffer: 1 << 20, env: process.env },
      (err, stdout, stderr) => {
        const dawn = dawnReason(stderr)
        if (err !== null) {
          const why = err.killed ? `timed out after ${PROBE_TIMEOUT_MS / 1000} s` : (dawn ?? err.message.split('\n')[0]!)
          return resolve({ ok: false, reason: `the GPU adapter probe failed: ${why}` })
        }
        let adapter: AdapterInfo | null
        try {
          adapter = JSON.parse(stdout) as AdapterInfo | null
        } catch {
          return resolve({ ok: false, reason: `the GPU adapter probe printed ${JSON.stringify(stdout.slice(0, 80))}` })
        }
        if (adapter === null) return resolve({ ok: false, reason: `no GPU adapter${dawn !== undefined ? ` (Dawn: ${dawn})` : ''}` })
        const software = softwareAdapterReason(adapter)
        resolve(software !== undefined ? { ok: false, reason: software } : { ok: true, adapter })
      },
    )
  })
}

/**
 * Gives this thread a navigator.gpu (Dawn) and then loads tfjs-backend-webgpu, which registers 'webgpu' on import
 * when navigator.gpu exists (its factory asks for the adapter with the device's own limits). Worker threads have
 * their own globals, so on the engine thread this touches nothing else.
 */
export async function installWebGpu(): Promise<void> {
  const spec: string = 'webgpu' // a variable: TypeScript must not resolve an optional package
  const { create, globals } = (await import(spec)) as { create(o: string[]): unknown; globals: object }
  // GPUBufferUsage, GPUMapMode, ...: the constants tfjs-backend-webgpu reads from the global scope.
  Object.assign(globalThis, globals)
  const g = globalThis as { navigator?: object }
  const gpu = create([])
  // Node 21+ has a navigator without gpu; Node 20 has none.
  if (g.navigator === undefined) g.navigator = { gpu }
  else Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true })
  const backendPkg: string = '@tensorflow/tfjs-backend-webgpu'
  await import(backendPkg)
}

/** The active webgpu device's largest storage binding (bytes), or the documented cap when it cannot be read. */
export function deviceBindingLimit(): number {
  const device = (activeBackend() as { device?: { limits?: { maxStorageBufferBindingSize?: number; maxBufferSize?: number } } }).device
  const l = device?.limits
  const limits = [l?.maxStorageBufferBindingSize, l?.maxBufferSize].filter((x): x is number => typeof x === 'number' && x > 0)
  return limits.length > 0 ? Math.min(...limits) : STORAGE_BINDING_LIMIT
}

export interface WeightInfo {
  name: string
  shape: readonly number[]
  dtype: string
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 4, complex64: 8, string: 0 }

/** Bytes a tensor takes on the GPU (tfjs-webgpu stores bools and ints as 32-bit). */
export function tensorBytes(w: WeightInfo): number {
  return w.shape.reduce((a, d) => a * d, 1) * (BYTES[w.dtype] ?? 4)
}

/** The weights that would not fit one storage binding of `limit` bytes, largest first. Pure: tested on CPU. */
export function oversizeWeights(weights: readonly WeightInfo[], limit: number): WeightInfo[] {
  return weights.filter((w) => tensorBytes(w) > limit).sort((a, b) => tensorBytes(b) - tensorBytes(a))
}

/**
 * Most batch rows whose tensors all fit one binding: a row holds the input (featureDim floats), each layer's output
 * (at most the widest weight's last dimension, e.g. a Dense kernel's units), the heads (Σn_h) and tfjs-webgpu's
 * top-k scratch (its widest head rounded up to a power of two, int32). Pure: tested on CPU.
 */
export function maxRowsPerCall(limit: number, featureDim: number, heads: readonly number[], weights: readonly WeightInfo[]): number {
  const pow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(1, n)))
  const widest = Math.max(
    featureDim,
    heads.reduce((a, n) => a + n, 0),
    pow2(Math.max(...heads)),
    ...weights.map((w) => (w.shape.length >= 2 ? w.shape[w.shape.length - 1]! : 0)),
  )
  return Math.max(1, Math.floor(limit / (4 * widest)))
}
