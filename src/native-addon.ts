// The small native addons built at install (native/build.mjs: dense.node for the engine's Dense layers, scan.node for
// the JSON reader's rows), loaded once per thread each. Every one is optional: without it, or with a build of another
// version (a pull without a reinstall), the caller runs its JS or wasm path and can say why.

import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/** An addon that says which exports it has. */
export interface Versioned {
  version: number
}

export type Found<T> = { addon: T } | { reason: string }

/** Where native/build/NAME.node lands, seen from src/ (tsx, tests) and from dist/src/ (npm start). */
const candidates = (name: string): string[] =>
  [`../native/build/${name}.node`, `../../native/build/${name}.node`].map((p) => fileURLToPath(new URL(p, import.meta.url)))

const loaded = new Map<string, Found<Versioned>>()

/** The addon `name` of this version, or why there is none (not built, another version, failed to load). */
export function nativeAddon<T extends Versioned>(name: string, version: number, paths?: readonly string[]): Found<T> {
  if (paths !== undefined) return loadFrom<T>(name, version, paths)
  let found = loaded.get(name)
  if (found === undefined) loaded.set(name, (found = loadFrom(name, version, candidates(name))))
  return found as Found<T>
}

function loadFrom<T extends Versioned>(name: string, version: number, paths: readonly string[]): Found<T> {
  const path = paths.find((p) => existsSync(p))
  if (path === undefined) return { reason: `native/build/${name}.node is not built (npm run build:native needs a C++ compiler)` }
  try {
    const addon = createRequire(import.meta.url)(path) as T
    if (addon.version !== version) return { reason: `${path} is version ${addon.version}, not ${version}: rebuild it (npm run build:native)` }
    return { addon }
  } catch (err) {
    return { reason: `${path} failed to load: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}` }
  }
}
