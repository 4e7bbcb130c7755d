// Builds the real app on a small known-weights bundle for HTTP tests (in-process via inject, or listening on port 0).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/http/app.js'
import { loadConfig } from '../../src/config.js'
import { selectBackend } from '../../src/engine/backend.js'
import { makeHeadsBundle, type HeadsBundleOptions, type MadeBundle } from './bundles.js'

const quiet = { info: () => {}, warn: () => {} }

/** A fresh temp folder removed when the test ends. */
export async function tempDir(t: { teardown(fn: () => unknown): void }, prefix = 'mhe-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes a bundle with known weights into a temp folder (tfjs needs a backend before building layers). */
export async function testBundle(t: { teardown(fn: () => unknown): void }, opts: HeadsBundleOptions): Promise<MadeBundle> {
  await selectBackend('wasm', quiet)
  const dir = await tempDir(t)
  return makeHeadsBundle(join(dir, 'bundle'), opts)
}

/**
 * buildApp on `bundle` with environment-style settings; closed when the test ends. The event-loop guard is off
 * unless `env` turns it on: in-process, the test's own client work lags the loop, and a busy machine would turn
 * that into 503 MHE_OVERLOADED answers no test asked for.
 */
export async function testApp(
  t: { teardown(fn: () => unknown): void },
  bundle: MadeBundle,
  env: Record<string, string> = {},
): Promise<FastifyInstance> {
  const app = await buildApp(
    loadConfig({ MHE_MODEL: bundle.dir, MHE_BACKEND: 'wasm', LOG_LEVEL: 'silent', MHE_MAX_EVENT_LOOP_DELAY_MS: '0', ...env }),
  )
  t.teardown(() => app.close())
  return app
}

/** Live tensors of the app's engine (on the engine thread by default: its count as of the last batch). */
export const numTensors = (app: FastifyInstance): number => app.mhe.engine.numTensors()
