// Entry point: reads the configuration, builds the app, listens, then loads and warms up the model (so probes answer
// while it loads), and drains on SIGTERM/SIGINT. A start-up failure prints one line naming the cause and exits 1.

import cluster from 'node:cluster'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig, ConfigError, type Config } from './config.js'
import { BundleError } from './errors.js'
import { MANIFEST_FILE } from './bundle/manifest.js'
import { drainAndClose, shutdownBudgetMs } from './http/drain.js'
import { announceReady, joinCluster, runPrimary, workerCount } from './cluster.js'

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))

function fail(message: string): never {
  process.stderr.write(`mhe-serve: ${message}\n`)
  process.exit(1)
}

async function main(): Promise<void> {
  let config: Config
  try {
    config = loadConfig(process.env, process.argv.slice(2))
  } catch (err) {
    if (err instanceof ConfigError) fail(`bad configuration: ${err.message}`)
    throw err
  }
  if (!existsSync(join(config.modelDir, MANIFEST_FILE))) {
    fail(
      `no model bundle at ${config.modelDir} (${MANIFEST_FILE} missing). Set MHE_MODEL to a bundle folder, ` +
        'make the demo with `npm run train`, or a benchmark bundle with `npm run bench:model -- --dim 64 --heads 10,10 --out DIR`.',
    )
  }
  // MHE_WORKERS != 1: this process only supervises; the workers (this script again) each run the code below.
  const workers = workerCount(config)
  if (workers > 1 && cluster.isPrimary) return runPrimary(config, workers)
  // Loaded here, not at the top: a cluster primary never needs tfjs and Fastify (~75 MB less RSS).
  const { buildApp } = await import('./http/app.js')
  const app = await buildApp(config, { startService: false }).catch((err: unknown) => fail(`cannot start: ${messageOf(err)}`))
  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    fail(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`)
  }

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal, exiting now')
      process.exit(1)
    }
    stopping = true
    app.log.info({ signal, drainDelayMs: config.drainDelayMs, graceMs: config.shutdownGraceMs }, 'draining')
    const timer = setTimeout(() => {
      app.log.error({ graceMs: config.shutdownGraceMs }, 'grace period over, exiting with work unfinished')
      process.exit(1)
    }, shutdownBudgetMs(config))
    timer.unref()
    drainAndClose(app, config).then(
      () => {
        app.log.info('stopped')
        process.exit(0)
      },
      (err: unknown) => {
        app.log.error({ err }, 'error while stopping')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  if (cluster.isWorker) joinCluster(app.server, stop)

  // Listening, not ready: /health/ready and /predict answer 503 until the model is loaded and warmed up.
  try {
    await app.mhe.start()
  } catch (err) {
    if (err instanceof BundleError) fail(`cannot load the model bundle: ${err.message}`)
    fail(`cannot start: ${messageOf(err)}`)
  }
  if (cluster.isWorker) announceReady()
}

main().catch((err: unknown) => fail(messageOf(err)))
