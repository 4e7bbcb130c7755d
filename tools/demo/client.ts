// Spelling-correction client over the OpenAPI-generated types: featurizes words as the served model's manifest
// says (GET /model, or the bundle's mhe.json) and asks POST /predict for each word's top-k corrections; `spell`
// then re-ranks the model's candidates as the bundle's `features.rerank` says (tools/demo/rerank.ts).

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import createClient from 'openapi-fetch'
import type { paths } from '../client/openapi-types.js'
import { featurizeBatch, parseNgramSettings, type NgramSettings } from '../features/ngrams.js'
import { bundleFeatures } from './bundle-features.js'
import { LABELS_FILE } from '../bundle/write.js'
import { loadPrior, parseRerankSettings, rerank, type RerankSettings } from './rerank.js'

export { bundleNgramSettings } from './bundle-features.js'

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

function describe(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'message' in err) return String((err as { message: unknown }).message)
  return JSON.stringify(err)
}

/** Top-k corrections per word, best first, from the running server: the model's own answer and scores. */
export async function correct(words: readonly string[], o: DemoOptions): Promise<Correction[][]> {
  return (await served(words, o, () => o.topK ?? 5)).candidates
}

export interface Spelling {
  word: string
  /** The word is one of the model's labels (a known word): it is kept as typed. */
  known: boolean
  /** The best suggestion's confidence reaches the bundle's threshold (always true without a re-ranker). */
  sure: boolean
  /** Best first: re-ranked, with confidences, when the bundle has a re-ranker; else the model's top-k. */
  suggestions: Correction[]
}

/**
 * What `npm run demo` shows: each word's suggestions, re-ranked as the served bundle's `features.rerank` says
 * (its frequency prior file is read from `modelDir`), and whether the answer is sure.
 */
export async function spell(words: readonly string[], o: DemoOptions): Promise<Spelling[]> {
  let settings: RerankSettings | undefined
  const { candidates } = await served(words, o, (features) => {
    settings = parseRerankSettings(features)
    return settings?.candidates ?? o.topK ?? 5
  })
  const k = o.topK ?? 5
  const rr = settings
  if (rr === undefined) {
    return words.map((word, i) => {
      const c = candidates[i]!
      return { word, known: c.some((x) => x.label === word.toLowerCase()), sure: true, suggestions: c.slice(0, k) }
    })
  }
  if (o.modelDir === undefined) throw new Error('the served model re-ranks with a frequency prior file; give the bundle folder (MHE_MODEL) to read it from')
  const labels = (await readFile(join(o.modelDir, LABELS_FILE), 'utf8')).split('\n')
  const prior = await loadPrior(join(o.modelDir, rr.prior), labels)
  return words.map((word, i) => {
    const c = candidates[i]!
    const ranked = rerank(word, c, prior, rr).slice(0, k).map(({ label, score }) => ({ label, score }))
    const known = c.some((x) => x.label === word.toLowerCase())
    return { word, known, sure: (ranked[0]?.score ?? 0) >= rr.threshold, suggestions: ranked }
  })
}

/** GET /model for the featurizer, then POST /predict with top_k = topK(the model's features object). */
async function served(words: readonly string[], o: DemoOptions, topK: (features: unknown) => number): Promise<{ candidates: Correction[][] }> {
  const client = createClient<paths>({
    baseUrl: o.url,
    headers: o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {},
    ...(o.fetch !== undefined ? { fetch: o.fetch } : {}),
  })
  const meta = await client.GET('/model')
  if (meta.data === undefined) throw new Error(`GET ${o.url}/model failed: ${meta.response.status} ${describe(meta.error)}`)
  let settings: NgramSettings
  let features: unknown = meta.data.features
  if (features !== undefined) {
    settings = parseNgramSettings(features)
  } else if (o.modelDir !== undefined) {
    features = await bundleFeatures(o.modelDir)
    settings = parseNgramSettings(features)
  } else {
    throw new Error(`GET ${o.url}/model has no "features" and no bundle folder was given to read them from`)
  }
  if (settings.dim !== meta.data.featureDim) {
    throw new Error(`featurizer makes ${settings.dim} values, the served model expects featureDim ${meta.data.featureDim}`)
  }
  const k = topK(features)
  if (words.length === 0) return { candidates: [] }
  const x = featurizeBatch(words, settings)
  const instances: number[][] = words.map((_, i) => Array.from(x.subarray(i * settings.dim, (i + 1) * settings.dim)))
  const res = await client.POST('/predict', { body: { instances, top_k: k } })
  if (res.data === undefined) throw new Error(`POST ${o.url}/predict failed: ${res.response.status} ${describe(res.error)}`)
  return { candidates: res.data.predictions.map((p) => p.top_k.map((c) => ({ label: c.label, score: c.score }))) }
}
