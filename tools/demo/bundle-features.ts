// A bundle's `features` object from its mhe.json (featurizer settings, and the demo's re-ranker), kept apart from
// the client so that tools/demo/request.ts loads no more than it needs.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MANIFEST_FILE } from '../../src/bundle/manifest.js'
import { parseNgramSettings, type NgramSettings } from '../features/ngrams.js'

/** The `features` object of a bundle's mhe.json. */
export async function bundleFeatures(modelDir: string): Promise<unknown> {
  const manifest = JSON.parse(await readFile(join(modelDir, MANIFEST_FILE), 'utf8')) as { features?: unknown }
  return manifest.features
}

/** The featurizer settings a bundle's mhe.json records. */
export async function bundleNgramSettings(modelDir: string): Promise<NgramSettings> {
  return parseNgramSettings(await bundleFeatures(modelDir))
}
