// Turns the reference PyTorch MHP classifier (one nn.Linear(D, n_1+…+n_H), saved as safetensors) into a
// model bundle the server loads: input [D] -> Dense(Σn_h) whose one output the engine splits per head.

import { readFile, readdir } from 'node:fs/promises'
import { basename } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import type { Manifest } from '../../src/bundle/manifest.js'
import { idSpace, outputWidth } from '../../src/mhe/codec.js'
import { writeBundle } from '../bundle/write.js'
import { formatShape, openSafetensors, type Safetensors, type TensorInfo } from './safetensors.js'

export class ImportError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ImportError'
  }
}

export interface ImportOptions {
  /** The safetensors file (a state_dict saved with safetensors.torch.save_file or by hand). */
  safetensors: string
  heads: readonly number[]
  numLabels: number
  /** Label names file, one per line; line i is label id i. */
  labels: string
  /** Bundle folder to write. */
  out: string
  name?: string
  version?: string
  /** Tensor names of the classifier; found automatically when both are left out. */
  weight?: string
  bias?: string
  /** Write into a non-empty `out` (overwriting a bundle there). */
  force?: boolean
}

export interface ImportResult {
  manifest: Manifest
  weight: string
  bias: string
  dtype: string
}

const describe = (t: TensorInfo): string => `"${t.name}" ${formatShape(t.shape)} ${t.dtype}`

/** Every tensor of the file, for error messages; long state_dicts are cut. */
function listTensors(st: Safetensors, max = 20): string {
  const all = st.header.tensors
  const shown = all.slice(0, max).map(describe).join(', ')
  return all.length === 0 ? 'the file holds no tensors' : `tensors in the file: ${shown}${all.length > max ? `, … (${all.length - max} more)` : ''}`
}

const prefixOf = (name: string, suffix: string): string | undefined =>
  name.endsWith(suffix) ? name.slice(0, -suffix.length) : undefined

/** Picks the classifier's weight [Σn, D] and bias [Σn]: the named pair, or the one pair that fits. */
export function findClassifier(st: Safetensors, total: number, heads: readonly number[], weight?: string, bias?: string): { weight: TensorInfo; bias: TensorInfo } {
  const expectW = `[${total}, D] (Σn_h of heads ${heads.join(',')} = ${total})`
  const expectB = `[${total}]`
  if (weight !== undefined || bias !== undefined) {
    if (weight === undefined || bias === undefined) throw new ImportError('give both --weight and --bias, or neither to find the pair automatically')
    const w = st.tensor(weight)
    const b = st.tensor(bias)
    if (w === undefined) throw new ImportError(`${st.file}: missing tensor "${weight}" (--weight); ${listTensors(st)}`)
    if (b === undefined) throw new ImportError(`${st.file}: missing tensor "${bias}" (--bias); ${listTensors(st)}`)
    if (w.shape.length !== 2 || w.shape[0] !== total) {
      const hint = w.shape.length === 2 && w.shape[1] === total ? '; it looks transposed ([D, Σn_h], Keras layout), PyTorch stores [out, in]' : ''
      throw new ImportError(`${st.file}: tensor "${w.name}" has shape ${formatShape(w.shape)}, expected ${expectW}${hint}`)
    }
    if (w.shape[1] === 0) throw new ImportError(`${st.file}: tensor "${w.name}" has shape ${formatShape(w.shape)}: D must be at least 1`)
    if (b.shape.length !== 1 || b.shape[0] !== total) {
      throw new ImportError(`${st.file}: tensor "${b.name}" has shape ${formatShape(b.shape)}, expected ${expectB} to match "${w.name}" ${formatShape(w.shape)}`)
    }
    return { weight: w, bias: b }
  }

  const ws = st.header.tensors.filter((t) => t.shape.length === 2 && t.shape[0] === total && t.shape[1]! > 0)
  const bs = st.header.tensors.filter((t) => t.shape.length === 1 && t.shape[0] === total)
  const pairs = ws.flatMap((w) => bs.map((b) => ({ weight: w, bias: b })))
  // A weight and bias of one layer share a prefix ("fc.weight", "fc.bias"); such pairs win over mixed ones.
  const samePrefix = pairs.filter((p) => {
    const pw = prefixOf(p.weight.name, 'weight')
    return pw !== undefined && pw === prefixOf(p.bias.name, 'bias')
  })
  const fitting = samePrefix.length > 0 ? samePrefix : pairs
  if (fitting.length === 1) return fitting[0]!
  if (fitting.length === 0) {
    const missing = ws.length === 0 ? `no 2-D weight ${expectW}` : `no 1-D bias ${expectB}`
    throw new ImportError(`${st.file}: no classifier found for heads ${heads.join(',')}: ${missing}; ${listTensors(st)}. ` +
      'Check --heads, or name the tensors with --weight NAME --bias NAME')
  }
  const list = fitting.map((p) => `${describe(p.weight)} + ${describe(p.bias)}`).join('; ')
  throw new ImportError(`${st.file}: ${fitting.length} (weight, bias) pairs fit heads ${heads.join(',')} (weight ${expectW}, bias ${expectB}): ${list}. ` +
    'Choose one with --weight NAME --bias NAME')
}

/** Label names, one per line (a final newline, CRLF endings and a UTF-8 BOM are accepted). */
export async function readLabels(path: string, numLabels: number): Promise<string[]> {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(path))
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new ImportError(e.code === undefined ? `${path}: labels file is not valid UTF-8` : `${path}: cannot read the labels file (${e.code})`)
  }
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''))
  if (lines.at(-1) === '') lines.pop()
  if (lines.length !== numLabels) {
    throw new ImportError(`${path}: ${lines.length} labels (one per line), but --num-labels is ${numLabels}`)
  }
  const empty = lines.findIndex((l) => l.trim() === '')
  if (empty >= 0) throw new ImportError(`${path}: line ${empty + 1} (label id ${empty}) is empty`)
  return lines
}

/** Checks heads / numLabels the way the manifest will, with the CLI's words. */
export function checkHeads(heads: readonly number[], numLabels: number): void {
  if (heads.length === 0 || !heads.every((n) => Number.isSafeInteger(n) && n > 0)) {
    throw new ImportError(`--heads must be positive integers, got ${heads.join(',')}`)
  }
  if (heads.length > 1 && heads.some((n) => n < 2)) throw new ImportError(`every head must have at least 2 outputs, got ${heads.join(',')}`)
  if (!Number.isSafeInteger(numLabels) || numLabels < 1) throw new ImportError(`--num-labels must be a positive integer, got ${numLabels}`)
  const product = idSpace(heads)
  if (product < numLabels) {
    throw new ImportError(`heads ${heads.join(',')} cover ${product} label ids (their product), fewer than --num-labels ${numLabels}`)
  }
}

/** Builds input [D] -> Dense(Σn_h) from PyTorch's weight [Σn_h, D] (kernel is its transpose) and bias. */
export function buildModel(weight: Float32Array, bias: Float32Array, total: number, dim: number): tf.LayersModel {
  const kernel = new Float32Array(dim * total)
  for (let j = 0; j < total; j++) {
    for (let d = 0; d < dim; d++) kernel[d * total + j] = weight[j * dim + d]!
  }
  const input = tf.input({ shape: [dim], name: 'features' })
  const dense = tf.layers.dense({ units: total, name: 'mhp', kernelInitializer: 'zeros' })
  const output = dense.apply(input) as tf.SymbolicTensor
  const model = tf.model({ inputs: input, outputs: output, name: 'mhp' })
  tf.tidy(() => dense.setWeights([tf.tensor2d(kernel, [dim, total]), tf.tensor1d(bias)]))
  return model
}

export async function importSafetensors(opts: ImportOptions): Promise<ImportResult> {
  checkHeads(opts.heads, opts.numLabels)
  const total = outputWidth(opts.heads)
  if (opts.force !== true) {
    const existing = await readdir(opts.out).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return []
      throw new ImportError(`${opts.out}: cannot use as the output folder (${err.code ?? err.message})`)
    })
    if (existing.length > 0) throw new ImportError(`${opts.out}: output folder is not empty (use --force to write into it)`)
  }
  const labels = await readLabels(opts.labels, opts.numLabels)

  let st: Safetensors
  try {
    st = await openSafetensors(opts.safetensors)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    if (e.code !== undefined) throw new ImportError(`${opts.safetensors}: cannot read the safetensors file (${e.code})`)
    throw err
  }
  const { weight, bias } = findClassifier(st, total, opts.heads, opts.weight, opts.bias)
  const dim = weight.shape[1]!
  const w = await st.read(weight.name)
  const b = await st.read(bias.name)
  for (const [info, values] of [[weight, w], [bias, b]] as const) {
    const bad = values.findIndex((v) => !Number.isFinite(v))
    if (bad >= 0) throw new ImportError(`${st.file}: tensor "${info.name}" holds a non-finite value (${values[bad]}) at flat index ${bad}`)
  }

  await tf.ready() // whichever backend the caller registered must be initialised before tensors exist
  const model = buildModel(w, b, total, dim)
  const dtype = weight.dtype === bias.dtype ? weight.dtype : `${weight.dtype}/${bias.dtype}`
  const source = basename(opts.safetensors)
  try {
    const manifest = await writeBundle(opts.out, {
      manifest: {
        name: opts.name ?? (basename(opts.out) || 'imported'),
        version: opts.version ?? '1',
        description: `MHP classifier imported from ${source} (${weight.name} ${formatShape(weight.shape)}, ${bias.name} ${formatShape(bias.shape)}, ${dtype})`,
        featureDim: dim,
        heads: [...opts.heads],
        numLabels: opts.numLabels,
        outputs: 'logits',
        training: {
          importedFrom: { format: 'safetensors', file: source, weight: weight.name, bias: bias.name, dtype, metadata: st.header.metadata ?? {} },
        },
      },
      model,
      labels,
    })
    return { manifest, weight: weight.name, bias: bias.name, dtype }
  } finally {
    model.dispose()
  }
}
