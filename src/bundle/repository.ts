// A model repository folder (MHE_MODEL_REPOSITORY): DIR/<name>/<version>/, each version a bundle, versions positive
// integers (as TF Serving and Triton lay them out), and an optional version policy per model (POLICY_FILE). No tfjs
// and no serving state here: what the folder holds, which versions the policy wants, and whether a version's files
// are all written (for polling).

import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { BundleError } from '../errors.js'
import { firstLine, inside, isErrno, parseJson, readRequired } from './files.js'
import { MANIFEST_FILE, parseManifest } from './manifest.js'

/** The per-model policy file, in DIR/<name>/. Absent: the latest version only. */
export const POLICY_FILE = 'policy.json'

/** Which of a model's versions are served: the newest `count`, all of them, or the ones listed. */
export type VersionPolicy = { latest: number } | { all: true } | { specific: number[] }

export const DEFAULT_POLICY: VersionPolicy = { latest: 1 }

/** Model names: what a URL path segment carries without escaping, and no hidden folders. */
const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/
/** Version folders: a positive integer without leading zeros (1, 2, 10; not 01 or 0). */
const VERSION_NAME = /^[1-9][0-9]{0,14}$/

export const isModelName = (name: string): boolean => MODEL_NAME.test(name)
export const isVersionName = (name: string): boolean => VERSION_NAME.test(name)

const isPositiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0

/** Checks a parsed policy file; the message names `file` and says what is expected. */
export function parsePolicy(raw: unknown, file: string): VersionPolicy {
  const expected = 'expected one of {"latest": N}, {"all": true}, {"specific": [versions]}'
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new BundleError(file, `${expected}, got ${JSON.stringify(raw)}`)
  const keys = Object.keys(raw)
  if (keys.length !== 1) throw new BundleError(file, `${expected}, got the keys ${JSON.stringify(keys)}`)
  const r = raw as Record<string, unknown>
  if ('latest' in r) {
    if (!isPositiveInt(r.latest)) throw new BundleError(file, `"latest" must be a positive integer (how many of the newest versions), got ${JSON.stringify(r.latest)}`)
    return { latest: r.latest }
  }
  if ('all' in r) {
    if (r.all !== true) throw new BundleError(file, `"all" must be true, got ${JSON.stringify(r.all)}`)
    return { all: true }
  }
  if ('specific' in r) {
    const v = r.specific
    if (!Array.isArray(v) || v.length === 0 || !v.every(isPositiveInt)) {
      throw new BundleError(file, `"specific" must be a non-empty array of positive integer versions, got ${JSON.stringify(v)}`)
    }
    return { specific: [...new Set(v)].sort((a, b) => a - b) }
  }
  throw new BundleError(file, `${expected}, got the key ${JSON.stringify(keys[0])}`)
}

/** The policy of the model in `modelDir` (its POLICY_FILE, or the default when there is none). */
export async function readPolicy(modelDir: string): Promise<VersionPolicy> {
  const file = join(modelDir, POLICY_FILE)
  let buf: Buffer
  try {
    buf = await readFile(file)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return DEFAULT_POLICY
    throw new BundleError(file, `cannot be read: ${firstLine(err)}`)
  }
  return parsePolicy(parseJson(buf, file), file)
}

/** The versions `policy` serves out of `available`, ascending. `specific` versions that are absent are left out. */
export function selectVersions(policy: VersionPolicy, available: readonly number[]): number[] {
  const sorted = [...new Set(available)].sort((a, b) => a - b)
  if ('all' in policy) return sorted
  if ('latest' in policy) return sorted.slice(Math.max(0, sorted.length - policy.latest))
  const wanted = new Set(policy.specific)
  return sorted.filter((v) => wanted.has(v))
}

/** Subfolders of `dir` whose names pass `accept` (files, hidden folders and other names are ignored). */
async function subfolders(dir: string, accept: (name: string) => boolean): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const out: string[] = []
  for (const e of entries) {
    if (!accept(e.name)) continue
    // A symlink to a folder counts (repositories are often assembled with links).
    if (e.isDirectory() || (e.isSymbolicLink() && (await stat(join(dir, e.name)).then((s) => s.isDirectory(), () => false)))) out.push(e.name)
  }
  return out.sort()
}

/** The model names in the repository folder; a missing or unreadable folder is a BundleError naming it. */
export async function listModels(repoDir: string): Promise<string[]> {
  try {
    return await subfolders(repoDir, isModelName)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new BundleError(repoDir, 'model repository folder not found (expected DIR/<name>/<version>/ bundle folders)')
    if (isErrno(err, 'ENOTDIR')) throw new BundleError(repoDir, 'is not a folder, expected a model repository folder')
    throw new BundleError(repoDir, `cannot be read: ${firstLine(err)}`)
  }
}

/** What the repository holds for one model. */
export interface ModelFolder {
  name: string
  dir: string
  policy: VersionPolicy
  /** Version folders present, ascending. */
  available: number[]
  /** The versions the policy serves, ascending. */
  wanted: number[]
}

/** Reads one model's folder: its version folders and its policy. BundleError if it is missing or its policy is bad. */
export async function scanModel(repoDir: string, name: string): Promise<ModelFolder> {
  const dir = join(repoDir, name)
  let names: string[]
  try {
    names = await subfolders(dir, isVersionName)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new BundleError(dir, `model folder not found in the repository ${repoDir}`)
    if (isErrno(err, 'ENOTDIR')) throw new BundleError(dir, 'is not a folder, expected a model folder of version folders')
    throw new BundleError(dir, `cannot be read: ${firstLine(err)}`)
  }
  const available = names.map(Number).sort((a, b) => a - b)
  const policy = await readPolicy(dir)
  return { name, dir, policy, available, wanted: selectVersions(policy, available) }
}

export const versionDir = (model: ModelFolder, version: number): string => join(model.dir, String(version))

/**
 * Whether a version folder is completely written, for polling: mhe.json present and valid, the model file and every
 * weight file it names present with the byte sizes it declares, the labels file with numLabels lines. Answers the
 * first thing missing (a writer is still at work), or undefined when all is there. Cheap: weight files are only
 * stat()ed. A complete folder can still fail to load (a wrong shape); loading says why.
 */
export async function incompleteReason(dir: string): Promise<string | undefined> {
  const manifestFile = join(dir, MANIFEST_FILE)
  try {
    const manifest = parseManifest(parseJson(await readRequired(manifestFile, 'missing'), manifestFile), manifestFile)
    const modelFile = inside(dir, dir, manifest.model, manifestFile, '"model"')
    const model = parseJson(await readRequired(modelFile, 'missing'), modelFile) as { weightsManifest?: unknown }
    const groups = Array.isArray(model.weightsManifest) ? (model.weightsManifest as { paths?: unknown; weights?: unknown }[]) : []
    for (const group of groups) {
      if (!Array.isArray(group.paths) || !Array.isArray(group.weights)) continue // loading reports it
      const expected = declaredBytes(group.weights)
      let actual = 0
      for (const p of group.paths) {
        if (typeof p !== 'string') continue
        const file = inside(dir, dirname(modelFile), p, modelFile, 'weight path')
        const size = await stat(file).then((s) => s.size, () => undefined)
        if (size === undefined) return `${file} is missing`
        actual += size
      }
      if (expected !== undefined && actual < expected) return `${modelFile}: its weight files hold ${actual} of ${expected} bytes`
    }
    const labelsFile = inside(dir, dir, manifest.labels, manifestFile, '"labels"')
    const labels = await readRequired(labelsFile, 'missing')
    const lines = countLines(labels)
    if (lines < manifest.numLabels) return `${labelsFile} has ${lines} of ${manifest.numLabels} labels`
    return undefined
  } catch (err) {
    return firstLine(err)
  }
}

/**
 * A fingerprint of a version folder's files (names, sizes, modification times, one level deep): polling tries a
 * version that failed to load again only once this changes.
 */
export async function folderStamp(dir: string): Promise<string> {
  try {
    const entries = await readdir(dir)
    const parts = await Promise.all(
      entries.sort().map((e) => stat(join(dir, e)).then((s) => `${e}:${s.size}:${s.mtimeMs}`, () => `${e}:gone`)),
    )
    return parts.join('|')
  } catch (err) {
    return `unreadable: ${firstLine(err)}`
  }
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 }

/** Bytes a weightsManifest group declares; undefined when one cannot be known (strings, a malformed spec). */
function declaredBytes(weights: unknown[]): number | undefined {
  let total = 0
  for (const w of weights) {
    const spec = w as { shape?: unknown; dtype?: unknown; quantization?: { dtype?: unknown } }
    const per = DTYPE_BYTES[String(spec.quantization?.dtype ?? spec.dtype)]
    if (per === undefined || !Array.isArray(spec.shape)) return undefined
    total += (spec.shape as number[]).reduce((a, d) => a * d, 1) * per
  }
  return total
}

/** Lines of a labels file (a last line without a line break counts). */
function countLines(buf: Buffer): number {
  let n = 0
  for (let p = buf.indexOf(0x0a); p !== -1; p = buf.indexOf(0x0a, p + 1)) n++
  return buf.length > 0 && buf[buf.length - 1] !== 0x0a ? n + 1 : n
}
