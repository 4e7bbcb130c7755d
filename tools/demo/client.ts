// Spelling-correction client over the OpenAPI-generated types: featurizes words as the served model's manifest
// says (GET /model, or the bundle's mhe.json) and asks POST /predict for each word's top-k corrections.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import createClient from 'openapi-fetch'
import type { paths } from '../client/openapi-types.js'
import { MANIFEST_FILE } from '../../src/bundle/manifest.js'
import { featurizeBatch, parseNgramSettings, type NgramSettings } from '../features/ngrams.js'

export interface Correction {
  label: string
  score: number
}

export interface DemoOptions {
  /** Server base URL, e.g. http://127.0.0.1:8080. */
  url: string
  /** Bundle folder whose mhe.json describes the featurizer, used when GET /model does not. */
  modelDir?: string
  /** Bearer token when the server requires one (MHE_API_KEYS). */
  token?: string
  topK?: number
  fetch?: typeof globalThis.fetch
}

/** The featurizer settings a bundle's mhe.json records. */
export async function bundleNgramSettings(modelDir: string): Promise<NgramSettings> {
  const manifest = JSON.parse(await readFile(join(modelDir, MANIFEST_FILE), 'utf8')) as { features?: unknown }
  return parseNgramSettings(manifest.features)
}

function describe(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'message' in err) return String((err as { message: unknown }).message)
  return JSON.stringify(err)
}

/** Top-k corrections per word, best first, from the running server. */
export async function correct(words: readonly string[], o: DemoOptions): Promise<Correction[][]> {
  const client = createClient<paths>({
    baseUrl: o.url,
    headers: o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {},
    ...(o.fetch !== undefined ? { fetch: o.fetch } : {}),
  })
  const meta = await client.GET('/model')
  if (meta.data === undefined) throw new Error(`GET ${o.url}/model failed: ${meta.response.status} ${describe(meta.error)}`)
  let settings: NgramSettings
  if (meta.data.features !== undefined) {
    settings = parseNgramSettings(meta.data.features)
  } else if (o.modelDir !== undefined) {
    settings = await bundleNgramSettings(o.modelDir)
  } else {
    throw new Error(`GET ${o.url}/model has no "features" and no bundle folder was given to read them from`)
  }
  if (settings.dim !== meta.data.featureDim) {
    throw new Error(`featurizer makes ${settings.dim} values, the served model expects featureDim ${meta.data.featureDim}`)
  }
  if (words.length === 0) return []
  const x = featurizeBatch(words, settings)
  const instances: number[][] = words.map((_, i) => Array.from(x.subarray(i * settings.dim, (i + 1) * settings.dim)))
  const res = await client.POST('/predict', { body: { instances, top_k: o.topK ?? 5 } })
  if (res.data === undefined) throw new Error(`POST ${o.url}/predict failed: ${res.response.status} ${describe(res.error)}`)
  return res.data.predictions.map((p) => p.top_k.map((c) => ({ label: c.label, score: c.score })))
}
