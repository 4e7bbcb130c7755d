// Reads a bundle folder's manifest and labels and checks them against each other. No tfjs here: the server's main
// thread needs only this much when the model runs on the engine thread (src/engine/thread-host.ts).

import { readFile, stat } from 'node:fs/promises'
import { isAbsolute, join, relative, resolve, sep } from 'node:path'
import { BundleError } from '../errors.js'
import { LabelStore } from './labels.js'
import { MANIFEST_FILE, parseManifest, type Manifest } from './manifest.js'

export const isErrno = (err: unknown, code: string): boolean => (err as { code?: string }).code === code
export const firstLine = (err: unknown): string => ((err as Error).message ?? String(err)).split('\n')[0]!

/** Resolves `rel` inside `base`; a path that leaves the bundle folder is an error named after `file`. */
export function inside(bundleDir: string, base: string, rel: string, file: string, what: string): string {
  if (isAbsolute(rel)) throw new BundleError(file, `${what} ${JSON.stringify(rel)} must be relative to the bundle folder`)
  const full = resolve(base, rel)
  const r = relative(bundleDir, full)
  if (r === '' || r.split(sep)[0] === '..' || isAbsolute(r)) {
    throw new BundleError(file, `${what} ${JSON.stringify(rel)} points outside the bundle folder ${bundleDir}`)
  }
  return full
}

export async function readRequired(file: string, missing: string): Promise<Buffer> {
  return readOr(file, missing, (f) => readFile(f))
}

/** `read(file)`, with fs errors turned into BundleErrors naming the file (`missing` when it does not exist). */
async function readOr<T>(file: string, missing: string, read: (file: string) => Promise<T>): Promise<T> {
  try {
    return await read(file)
  } catch (err) {
    if (err instanceof BundleError) throw err
    if (isErrno(err, 'ENOENT')) throw new BundleError(file, missing)
    if (isErrno(err, 'EISDIR')) throw new BundleError(file, 'is a folder, expected a file')
    throw new BundleError(file, `cannot be read: ${firstLine(err)}`)
  }
}

export function parseJson(buf: Buffer, file: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'))
  } catch (err) {
    throw new BundleError(file, `is not valid JSON: ${firstLine(err)}`)
  }
}

/** Where a bundle's parts are, from its checked manifest. */
export interface BundleFiles {
  dir: string
  manifest: Manifest
  modelFile: string
  labelsFile: string
}

/** Checks the folder and reads its manifest; no tfjs (the main thread needs only this and the labels). */
export async function readBundleFiles(dir: string): Promise<BundleFiles> {
  const bundleDir = resolve(dir)
  try {
    const st = await stat(bundleDir)
    if (!st.isDirectory()) throw new BundleError(bundleDir, 'is not a folder, expected a model bundle folder')
  } catch (err) {
    if (err instanceof BundleError) throw err
    if (isErrno(err, 'ENOENT')) throw new BundleError(bundleDir, `bundle folder not found (expected ${MANIFEST_FILE}, model.json, labels.txt)`)
    throw new BundleError(bundleDir, `cannot be read: ${firstLine(err)}`)
  }

  const manifestFile = join(bundleDir, MANIFEST_FILE)
  const manifest = parseManifest(
    parseJson(await readRequired(manifestFile, `missing manifest: a bundle folder must contain ${MANIFEST_FILE}`), manifestFile),
    manifestFile,
  )

  const modelFile = inside(bundleDir, bundleDir, manifest.model, manifestFile, '"model"')
  const labelsFile = inside(bundleDir, bundleDir, manifest.labels, manifestFile, '"labels"')
  return { dir: bundleDir, manifest, modelFile, labelsFile }
}

/**
 * The bundle's labels, read first (a wrong count is the most common mistake), beside what `build` then makes of the
 * bundle. If that fails, the labels are released: a store may be shared with a version that serves, and the registry
 * of stores would otherwise keep them.
 */
export async function withLabels<T>(files: BundleFiles, build: () => Promise<T>): Promise<[LabelStore, T]> {
  const labels = await readLabels(files)
  try {
    return [labels, await build()]
  } catch (err) {
    labels.release()
    throw err
  }
}

/** The bundle's label names, checked against the manifest's numLabels (read and indexed a chunk at a time). */
async function readLabels({ manifest, labelsFile }: BundleFiles): Promise<LabelStore> {
  const labels = await readOr(labelsFile, `missing label file (named by ${MANIFEST_FILE} "labels")`, (f) => LabelStore.read(f, manifest.numLabels))
  if (labels.size !== manifest.numLabels) {
    labels.release()
    throw new BundleError(labelsFile, `has ${labels.size} labels (lines), ${MANIFEST_FILE} "numLabels" is ${manifest.numLabels}`)
  }
  return labels
}
