// Model repositories for tests: DIR/<name>/<version>/ bundles with known weights whose label names say which model
// and version they come from ("a-v2-17"), so an answer shows which version computed it.
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeHeadsBundle, type HeadsBundleOptions, type MadeBundle } from './bundles.js'
import { tempDir } from './server.js'
import { selectBackend } from '../../src/engine/backend.js'

type Teardown = { teardown(fn: () => unknown): void }

export interface VersionSpec extends Partial<HeadsBundleOptions> {
  featureDim: number
  heads: number[]
  numLabels: number
}

/** The label prefix of a version's bundle: "<model>-v<version>-". */
export const labelPrefix = (model: string, version: number): string => `${model}-v${version}-`

/** Which version computed a label, from its name ("a-v2-17" -> 2); undefined for another model's label. */
export function versionOfLabel(model: string, label: string): number | undefined {
  const m = new RegExp(`^${model}-v(\\d+)-`).exec(label)
  return m ? Number(m[1]) : undefined
}

/**
 * Writes version `version` of `model` into `repo` as a writer should: into a temporary name beside it, then one
 * rename, so a scan never sees half a folder. Different versions get different weights (seed) and labels.
 */
export async function addVersion(repo: string, model: string, version: number, spec: VersionSpec): Promise<MadeBundle> {
  const tmp = join(repo, model, `.tmp-${version}-${process.pid}`)
  await mkdir(join(repo, model), { recursive: true })
  const made = await makeHeadsBundle(tmp, { seed: version * 7 + model.length, ...spec, name: model, labelPrefix: labelPrefix(model, version) })
  const dir = join(repo, model, String(version))
  await rename(tmp, dir)
  return { ...made, dir }
}

/** A copy of `from` placed as version `version` of `model` (copy to a temporary name, then rename). */
export async function copyVersion(from: string, repo: string, model: string, version: number): Promise<string> {
  const tmp = join(repo, model, `.tmp-copy-${version}`)
  await cp(from, tmp, { recursive: true })
  const dir = join(repo, model, String(version))
  await rename(tmp, dir)
  return dir
}

/** Removes a version folder. */
export const removeVersion = (repo: string, model: string, version: number): Promise<void> =>
  rm(join(repo, model, String(version)), { recursive: true, force: true })

export const writePolicy = (repo: string, model: string, policy: unknown): Promise<void> =>
  writeFile(join(repo, model, 'policy.json'), JSON.stringify(policy))

/** An empty repository folder, removed when the test ends (tfjs gets a backend for writing bundles). */
export async function tempRepository(t: Teardown): Promise<string> {
  await selectBackend('wasm', { info: () => {}, warn: () => {} }) // tfjs builds the bundles' layers on it
  return tempDir(t, 'mhe-repo-')
}
