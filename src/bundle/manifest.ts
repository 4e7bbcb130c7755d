// The bundle manifest (mhe.json): the contract between training and serving. See models/README.md.

import { BundleError } from '../errors.js'
import { idSpace } from '../mhe/codec.js'

export const MANIFEST_FILE = 'mhe.json'
export const MANIFEST_FORMAT = 1

export interface Manifest {
  /** Version of this manifest layout; only 1 exists. */
  format: number
  name: string
  version: string
  description?: string
  /** Length of one input feature vector. */
  featureDim: number
  /** Head sizes n_1..n_H, head 1 the most significant digit of a label id. */
  heads: number[]
  /** C: label ids are 0..C-1; C <= product of heads. */
  numLabels: number
  /** What the model returns per head: raw logits or softmax probabilities. */
  outputs: 'logits' | 'probabilities'
  /** TensorFlow.js model file, relative to the bundle folder. */
  model: string
  /** Label names, one per line, relative to the bundle folder. */
  labels: string
  /** How raw inputs become feature vectors (free-form; the demo's featurizer writes its settings here). */
  features?: Record<string, unknown>
  /** Free-form facts about training (data, epochs, accuracy). */
  training?: Record<string, unknown>
}

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0
const isNonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0

/** Checks a parsed mhe.json and returns it typed; throws BundleError naming `file` and the first problem. */
export function parseManifest(raw: unknown, file: string): Manifest {
  const fail = (msg: string): never => {
    throw new BundleError(file, msg)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('expected a JSON object')
  const m = raw as Record<string, unknown>
  if (m.format !== MANIFEST_FORMAT) fail(`"format" must be ${MANIFEST_FORMAT}, got ${JSON.stringify(m.format)}`)
  for (const key of ['name', 'version', 'model', 'labels'] as const) {
    if (!isNonEmptyString(m[key])) fail(`"${key}" must be a non-empty string, got ${JSON.stringify(m[key])}`)
  }
  if (m.description !== undefined && typeof m.description !== 'string') fail('"description" must be a string')
  if (!isPositiveInt(m.featureDim)) fail(`"featureDim" must be a positive integer, got ${JSON.stringify(m.featureDim)}`)
  if (!Array.isArray(m.heads) || m.heads.length === 0 || !m.heads.every(isPositiveInt)) {
    fail(`"heads" must be a non-empty array of positive integers, got ${JSON.stringify(m.heads)}`)
  }
  const heads = m.heads as number[]
  if (heads.some((n) => n < 2) && heads.length > 1) fail(`every head must have at least 2 outputs, got ${JSON.stringify(heads)}`)
  if (!isPositiveInt(m.numLabels)) fail(`"numLabels" must be a positive integer, got ${JSON.stringify(m.numLabels)}`)
  const product = idSpace(heads)
  if (!Number.isSafeInteger(product)) fail(`the product of "heads" ${JSON.stringify(heads)} exceeds 2^53`)
  if (product < (m.numLabels as number)) {
    fail(`"heads" ${JSON.stringify(heads)} cover ${product} ids, fewer than "numLabels" ${String(m.numLabels)}`)
  }
  if (m.outputs !== 'logits' && m.outputs !== 'probabilities') {
    fail(`"outputs" must be "logits" or "probabilities", got ${JSON.stringify(m.outputs)}`)
  }
  for (const key of ['features', 'training'] as const) {
    const v = m[key]
    if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) fail(`"${key}" must be an object`)
  }
  return m as unknown as Manifest
}
