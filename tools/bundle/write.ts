// Writes a model bundle folder (mhe.json, model.json + weights, labels.txt) in the form bundle/load.ts reads.
// Plain @tensorflow/tfjs has no file:// saver, so the artifacts are written here by hand.

import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { MANIFEST_FILE, MANIFEST_FORMAT, parseManifest, type Manifest } from '../../src/bundle/manifest.js'

export const MODEL_FILE = 'model.json'
export const WEIGHTS_FILE = 'weights.bin'
export const LABELS_FILE = 'labels.txt'

export interface BundleContents {
  manifest: Omit<Manifest, 'format' | 'model' | 'labels'>
  model: tf.LayersModel
  labels: readonly string[]
}

/** Saves `model`, its manifest and labels into `dir` (created if missing) and returns the manifest written. */
export async function writeBundle(dir: string, contents: BundleContents): Promise<Manifest> {
  const manifest = parseManifest(
    { format: MANIFEST_FORMAT, ...contents.manifest, model: MODEL_FILE, labels: LABELS_FILE },
    join(dir, MANIFEST_FILE),
  )
  if (contents.labels.length !== manifest.numLabels) {
    throw new Error(`writeBundle: ${contents.labels.length} labels given, manifest says numLabels ${manifest.numLabels}`)
  }
  const bad = contents.labels.findIndex((l) => /[\r\n]/.test(l))
  if (bad >= 0) throw new Error(`writeBundle: label ${bad} contains a line break`)

  await mkdir(dir, { recursive: true })
  await contents.model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weightData = artifacts.weightData
      const bytes = weightData === undefined ? new Uint8Array(0) : new Uint8Array(tf.io.CompositeArrayBuffer.join(weightData))
      const modelJson = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
      }
      await writeFile(join(dir, WEIGHTS_FILE), bytes)
      await writeFile(join(dir, MODEL_FILE), JSON.stringify(modelJson))
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: bytes.byteLength } }
    }),
  )
  await writeFile(join(dir, LABELS_FILE), contents.labels.join('\n') + '\n')
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}
