// Loads a model bundle folder (mhe.json, model.json + weights, labels.txt) and checks that its parts agree.
// Every inconsistency is a BundleError naming the file and the mismatch, so a bad bundle stops start-up clearly.

import { dirname } from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import { GraphModel, loadGraphModel } from '@tensorflow/tfjs-converter'
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers'
import { BundleError } from '../errors.js'
import type { LabelStore } from '../bundle/labels.js'
import { firstLine, inside, parseJson, readBundleFiles, readRequired, withLabels, type BundleFiles } from '../bundle/files.js'
import { MANIFEST_FILE, type Manifest } from '../bundle/manifest.js'
import { outputWidth } from '../mhe/codec.js'

/** How the model's outputs map onto heads: one output per head, or one [batch, Σn_h] output split by the engine. */
export type OutputLayout = 'split' | 'concat'

/** A bundle's model and what the engine needs to run it. */
export interface BundleModel {
  dir: string
  manifest: Manifest
  model: LayersModel | GraphModel
  layout: OutputLayout
}

export interface Bundle extends BundleModel {
  labels: LabelStore
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 }

interface WeightSpec {
  name: string
  shape: number[]
  dtype: string
  quantization?: { dtype?: string }
  /** 'optimizer' for an optimizer's state (not the model's). */
  group?: string
}
interface WeightGroup {
  paths: string[]
  weights: WeightSpec[]
}

const fmtShape = (shape: readonly (number | null)[] | undefined): string =>
  shape === undefined ? 'unknown' : `[${shape.map((d) => (d === null || d < 0 ? 'batch' : String(d))).join(', ')}]`

/** Bytes a weight spec needs, or undefined when it cannot be known (string tensors). */
function specBytes(spec: WeightSpec, file: string): number | undefined {
  if (!Array.isArray(spec.shape) || !spec.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new BundleError(file, `weight ${JSON.stringify(spec.name)} has an invalid shape ${JSON.stringify(spec.shape)}`)
  }
  const dtype = spec.quantization?.dtype ?? spec.dtype
  if (dtype === 'string') return undefined
  const per = DTYPE_BYTES[dtype]
  if (per === undefined) throw new BundleError(file, `weight ${JSON.stringify(spec.name)} has an unknown dtype ${JSON.stringify(dtype)}`)
  return spec.shape.reduce((a, d) => a * d, 1) * per
}

/** Reads every weight file, checking byte sizes against the specs; returns the specs and bytes in order. */
async function readWeights(
  bundleDir: string,
  modelFile: string,
  manifestRaw: unknown,
): Promise<{ specs: WeightSpec[]; data: ArrayBuffer }> {
  if (!Array.isArray(manifestRaw)) throw new BundleError(modelFile, '"weightsManifest" must be an array of {paths, weights}')
  const groups = manifestRaw as WeightGroup[]
  const specs: WeightSpec[] = []
  const buffers: Buffer[] = []
  for (const [g, group] of groups.entries()) {
    if (typeof group !== 'object' || group === null || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new BundleError(modelFile, `weightsManifest[${g}] must have "paths" and "weights" arrays`)
    }
    let expected = 0
    let exact = true
    for (const spec of group.weights) {
      const b = specBytes(spec, modelFile)
      if (b === undefined) exact = false
      else expected += b
    }
    let actual = 0
    const files: string[] = []
    for (const p of group.paths) {
      if (typeof p !== 'string' || p === '') throw new BundleError(modelFile, `weightsManifest[${g}] has a bad path ${JSON.stringify(p)}`)
      const file = inside(bundleDir, dirname(modelFile), p, modelFile, 'weight path')
      const buf = await readRequired(file, `missing weight file (listed in ${modelFile} weightsManifest[${g}].paths)`)
      buffers.push(buf)
      files.push(file)
      actual += buf.byteLength
    }
    if (actual < expected || (exact && actual !== expected)) {
      const names = group.weights.map((w) => `${w.name} ${fmtShape(w.shape)} ${w.quantization?.dtype ?? w.dtype}`).join(', ')
      const where = files.length === 1 ? files[0]! : `${files.join(' + ')} (weightsManifest[${g}])`
      throw new BundleError(where, `holds ${actual} bytes, ${modelFile} declares ${expected} bytes for ${names}`)
    }
    specs.push(...group.weights)
  }
  const total = buffers.reduce((a, b) => a + b.byteLength, 0)
  const single = buffers.length === 1 ? buffers[0]! : undefined
  if (single !== undefined && single.byteOffset === 0 && single.buffer.byteLength === single.byteLength) {
    return { specs, data: single.buffer as ArrayBuffer }
  }
  const data = new Uint8Array(total)
  let off = 0
  for (const b of buffers) {
    data.set(b, off)
    off += b.byteLength
  }
  return { specs, data: data.buffer }
}

/**
 * The layers model with the saved weights, as loadLayersModel builds it, except that whatever fails frees what it made:
 * a decode that throws (bad quantization metadata) its partial weights, a model whose weights do not fit itself and
 * the decoded weights (loadLayersModel left 11 tensors behind per such load). Loading the weights here turns off what
 * loadLayersModel does when it loads them itself, building every weight as zeros instead of from its initializer
 * (random for a Dense kernel: 230,400 normals in JS for the bench model, before the saved values replace them), so
 * the topology asks for zeros itself. Strict loading still refuses a model with a weight the file does not set.
 */
async function buildLayersModel(artifacts: tf.io.ModelArtifacts, specs: WeightSpec[], data: ArrayBuffer): Promise<LayersModel> {
  const weights = tf.tidy(() => tf.io.decodeWeights(data, specs as tf.io.WeightsManifestEntry[]))
  let model: LayersModel | undefined
  try {
    model = await loadLayersModel(tf.io.fromMemory({ ...artifacts, modelTopology: zeroInitializers(artifacts.modelTopology) as object, weightSpecs: undefined, weightData: undefined }))
    // Optimizer state (Keras exports may carry it) is not the model's: loadLayersModel leaves it out too.
    model.loadWeights(Object.fromEntries(specs.filter((s) => s.group !== 'optimizer').map((s) => [s.name, weights[s.name]!])))
    return model
  } catch (err) {
    model?.dispose()
    throw err
  } finally {
    tf.dispose(Object.values(weights))
  }
}

/** A layers model's topology with every `*_initializer` set to zeros (buildLayersModel). */
function zeroInitializers(config: unknown): unknown {
  if (Array.isArray(config)) return config.map(zeroInitializers)
  if (typeof config !== 'object' || config === null) return config
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(config)) {
    out[key] = key.endsWith('_initializer') && value !== null ? { class_name: 'Zeros', config: {} } : zeroInitializers(value)
  }
  return out
}

/** Checks the model's input and output shapes against the manifest and returns the output layout. */
function checkShapes(
  manifest: Manifest,
  inputs: readonly (readonly (number | null)[] | undefined)[],
  outputs: readonly (readonly (number | null)[] | undefined)[],
  modelFile: string,
): OutputLayout {
  const heads = manifest.heads
  if (inputs.length !== 1) throw new BundleError(modelFile, `expected 1 model input [batch, ${manifest.featureDim}], found ${inputs.length}`)
  const inShape = inputs[0]
  if (inShape !== undefined) {
    const last = inShape[inShape.length - 1]
    if (inShape.length !== 2 || (last !== null && last !== undefined && last >= 0 && last !== manifest.featureDim)) {
      throw new BundleError(
        modelFile,
        `model input shape ${fmtShape(inShape)} does not match mhe.json "featureDim" ${manifest.featureDim} (expected [batch, ${manifest.featureDim}])`,
      )
    }
  }
  const lastDims = outputs.map((s) => (s === undefined ? undefined : s.length === 2 ? s[1] : -1))
  const sum = outputWidth(heads)
  const got = `the model has ${outputs.length} output(s) of shape ${outputs.map(fmtShape).join(', ')}`
  const want =
    heads.length === 1
      ? `1 output [batch, ${heads[0]}]`
      : `${heads.length} outputs [batch, n_h] with n_h = ${JSON.stringify(heads)} in order, or 1 output [batch, ${sum}]`
  const fits = (d: number | null | undefined, n: number): boolean => d === undefined || d === n
  if (outputs.length === heads.length && lastDims.every((d, h) => fits(d, heads[h]!))) return 'split'
  if (outputs.length === 1 && fits(lastDims[0], sum)) return 'concat'
  throw new BundleError(modelFile, `${got}; mhe.json "heads" ${JSON.stringify(heads)} expects ${want}`)
}

/** Loads and checks the whole bundle in `dir`. Uses the active tfjs backend for the weights. */
export async function loadBundle(dir: string): Promise<Bundle> {
  const files = await readBundleFiles(dir)
  const [labels, model] = await withLabels(files, () => loadModel(files))
  return { ...model, labels }
}

/** Builds the bundle's model and checks its inputs and outputs against the manifest. */
export async function loadModel({ dir: bundleDir, manifest, modelFile }: BundleFiles): Promise<BundleModel> {
  const modelJson = parseJson(await readRequired(modelFile, `missing model file (named by ${MANIFEST_FILE} "model")`), modelFile)
  if (typeof modelJson !== 'object' || modelJson === null || Array.isArray(modelJson)) {
    throw new BundleError(modelFile, 'expected a TensorFlow.js model.json object')
  }
  const mj = modelJson as Record<string, unknown>
  if (typeof mj.modelTopology !== 'object' || mj.modelTopology === null) {
    throw new BundleError(modelFile, 'has no "modelTopology": not a TensorFlow.js model.json')
  }
  const topology = mj.modelTopology as Record<string, unknown>
  const isGraph = mj.format === 'graph-model' || (mj.format === undefined && Array.isArray(topology.node))
  if (mj.format !== undefined && mj.format !== 'graph-model' && mj.format !== 'layers-model') {
    throw new BundleError(modelFile, `"format" must be "layers-model" or "graph-model", got ${JSON.stringify(mj.format)}`)
  }
  const { specs, data } = await readWeights(bundleDir, modelFile, mj.weightsManifest)

  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: topology as tf.io.ModelArtifacts['modelTopology'],
    format: mj.format as string | undefined,
    weightSpecs: specs as tf.io.WeightsManifestEntry[],
    weightData: data,
    signature: mj.signature as object | undefined,
    userDefinedMetadata: mj.userDefinedMetadata as Record<string, object> | undefined,
    modelInitializer: mj.modelInitializer as object | undefined,
  }
  let model: LayersModel | GraphModel
  try {
    model = isGraph ? await loadGraphModel(tf.io.fromMemory(artifacts)) : await buildLayersModel(artifacts, specs, data)
  } catch (err) {
    throw new BundleError(modelFile, `cannot build the ${isGraph ? 'graph' : 'layers'} model: ${firstLine(err)}`)
  }

  try {
    let layout: OutputLayout
    if (model instanceof GraphModel) {
      // Graph models rarely declare output shapes: run one row of zeros to learn them.
      const inShapes = model.inputs.map((i) => i.shape)
      checkShapes(manifest, inShapes, model.outputs.map(() => undefined), modelFile)
      let outShapes: (number | null)[][] = []
      tf.tidy(() => {
        const out = (model as GraphModel).execute(tf.zeros([1, manifest.featureDim]))
        outShapes = (Array.isArray(out) ? out : [out]).map((t) => t.shape.map((d, i) => (i === 0 ? null : d)))
      })
      layout = checkShapes(manifest, inShapes, outShapes, modelFile)
    } else {
      layout = checkShapes(
        manifest,
        model.inputs.map((i) => i.shape),
        model.outputs.map((o) => o.shape),
        modelFile,
      )
    }
    return { dir: bundleDir, manifest, model, layout }
  } catch (err) {
    model.dispose()
    if (err instanceof BundleError) throw err
    throw new BundleError(modelFile, `the model does not run on [1, ${manifest.featureDim}] zeros: ${firstLine(err)}`)
  }
}
