// The served model's candidates without a server: the bundle loaded by the server's own loader and engine
// (what POST /predict returns), for evaluation and for fitting the re-ranker.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { loadBundle } from '../../src/engine/model-load.js'
import { Engine } from '../../src/engine/engine.js'
import { featurizeBatch, parseNgramSettings } from '../features/ngrams.js'

export interface LocalModel {
  labels: string[]
  /** Top-k of each word as POST /predict gives it: label and score (product of the heads' probabilities). */
  candidates(words: readonly string[], k: number): Promise<{ label: string; score: number }[][]>
  dispose(): void
}

export async function loadLocalModel(dir: string): Promise<LocalModel> {
  const bundle = await loadBundle(dir)
  const settings = parseNgramSettings(bundle.manifest.features)
  const labels = (await readFile(join(dir, bundle.manifest.labels), 'utf8')).split('\n').slice(0, bundle.manifest.numLabels)
  const engine = await Engine.create(bundle, tf.getBackend())
  return {
    labels,
    async candidates(words, k) {
      const out: { label: string; score: number }[][] = []
      for (let s = 0; s < words.length; s += 256) {
        const chunk = words.slice(s, s + 256)
        const res = await engine.predict(featurizeBatch(chunk, settings), chunk.length, new Array<number>(chunk.length).fill(k))
        for (const row of res) out.push(row.map((c) => ({ label: labels[c.id]!, score: Math.exp(c.logScore) })))
      }
      return out
    },
    dispose: () => engine.dispose(),
  }
}
