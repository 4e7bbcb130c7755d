// `npm run train:compare -- …`: MHE against the one-head OHE baseline with the same backbone, data, epochs and
// seed; scores each on the evaluation suite, times serving (loadBundle + Engine, batch of 256) and prints a
// Markdown table (also written as JSON with --json).

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { loadBundle } from '../../src/engine/model-load.js'
import { writeBundle } from '../bundle/write.js'
import { Engine } from '../../src/engine/engine.js'
import { DEFAULT_NGRAMS, featurizeBatch, type NgramSettings } from '../features/ngrams.js'
import { ProgressBar } from './progress.js'
import { formatSuite, runSuite, useBackend, type SuiteResult } from './suite.js'
import { labelPermutation, type LabelOrder } from './order.js'
import { balancedHeads, train } from './train.js'
import { typo, mulberry32, randInt } from './typos.js'
import { loadWords } from './words.js'
import { median } from '../lib/stats.js'

interface Row {
  heads: number[]
  order: LabelOrder
  headParams: number
  trainSeconds: number
  serveMsPer256: number
  suite: SuiteResult
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      'num-labels': { type: 'string', default: '5000' },
      configs: { type: 'string', default: 'ohe,2,3' },
      hidden: { type: 'string', default: '512' },
      dim: { type: 'string', default: String(DEFAULT_NGRAMS.dim) },
      epochs: { type: 'string', default: '10' },
      'batch-size': { type: 'string', default: '256' },
      lr: { type: 'string', default: '0.01' },
      seed: { type: 'string', default: '1' },
      'typos-per-word': { type: 'string', default: '3' },
      'two-edit-share': { type: 'string', default: '0.3' },
      reps: { type: 'string', default: '20' },
      backend: { type: 'string', default: 'wasm' },
      json: { type: 'string' },
    },
  })
  const C = Number(a['num-labels'])
  const words = loadWords(70).words.slice(0, C)
  if (words.length < C) throw new Error(`only ${words.length} words available, asked for ${C}`)
  const features: NgramSettings = { ...DEFAULT_NGRAMS, dim: Number(a.dim) }
  const hidden = a.hidden.split(',').map(Number)
  // "ohe" = one head of C; a number H = H balanced heads; "n1xn2" = explicit sizes; ":grid" = grid label order.
  const configs = a.configs.split(',').map((token) => {
    const [c = '', order = 'frequency'] = token.split(':')
    if (order !== 'frequency' && order !== 'grid') throw new Error(`label order must be frequency or grid, got ${order}`)
    const heads = c === 'ohe' ? [C] : c.includes('x') ? c.split('x').map(Number) : balancedHeads(C, Number(c))
    return { heads, order: order as LabelOrder }
  })
  const backend = await useBackend(a.backend)
  const log = (s: string) => process.stderr.write(s + '\n')
  const rng = mulberry32(99)
  const serveWords = Array.from({ length: 256 }, () => {
    const w = words[randInt(rng, C)]!
    return rng() < 0.5 ? w : typo(w, rng, 1)
  })
  const x = featurizeBatch(serveWords, features)
  const tmp = await mkdtemp(join(tmpdir(), 'mhe-compare-'))
  const rows: Row[] = []
  const dirs: string[] = []
  try {
    for (const { heads, order } of configs) {
      const labels = labelPermutation(words, heads, order).map((i) => words[i]!)
      log(`\n== heads [${heads.join(', ')}], ${order} order, ${C} labels, hidden [${hidden.join(', ')}], ${a.epochs} epochs, backend ${backend}`)
      const bar = new ProgressBar()
      const run = await train(
        {
          labels,
          features,
          heads,
          hidden,
          epochs: Number(a.epochs),
          batchSize: Number(a['batch-size']),
          lr: Number(a.lr),
          seed: Number(a.seed),
          typosPerWord: Number(a['typos-per-word']),
          twoEditShare: Number(a['two-edit-share']),
        },
        {
          onStep: (d, total, loss, acc) => bar.update(d, total, `loss ${loss.toFixed(3)} acc ${(100 * acc).toFixed(1)}%`),
          onEpoch: (s) => bar.log(`epoch ${s.epoch}: loss ${s.loss.toFixed(4)} train acc ${(100 * s.accuracy).toFixed(2)}% (${s.seconds.toFixed(0)} s)`),
        },
      )
      const suite = await runSuite(run.model, features, labels, { cleanCount: C, typoCount: 2000, seed: 1_000_003 })
      log(formatSuite(suite))
      const dir = join(tmp, `${heads.join('x')}-${order}`)
      const layers = await run.model.toLayersModel()
      await writeBundle(dir, {
        manifest: { name: `compare-${heads.join('x')}`, version: '1', featureDim: features.dim, heads, numLabels: C, outputs: 'logits', features: { ...features } },
        model: layers,
        labels,
      })
      layers.dispose()
      const headParams = run.model.headParams()
      run.model.dispose()
      log(`classifier params ${headParams}, train ${run.seconds.toFixed(0)} s`)
      rows.push({ heads, order, headParams, trainSeconds: run.seconds, serveMsPer256: 0, suite })
      dirs.push(dir)
    }
    // Serving time: every bundle loaded, then timed round-robin so machine noise hits them alike.
    const engines = await Promise.all(dirs.map(async (d) => Engine.create(await loadBundle(d), tf.getBackend())))
    const k = new Array<number>(256).fill(5)
    for (const e of engines) await e.predict(x, 256, k)
    const times = engines.map(() => [] as number[])
    for (let r = 0; r < Number(a.reps); r++) {
      for (const [i, e] of engines.entries()) {
        const t0 = performance.now()
        await e.predict(x, 256, k)
        times[i]!.push(performance.now() - t0)
      }
    }
    engines.forEach((e, i) => {
      rows[i]!.serveMsPer256 = median(times[i]!)
      e.dispose()
    })
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`
  const lines = [
    `C = ${C} labels (the commonest words), backbone: sparse ${features.dim} -> ${hidden.join(' -> ')} ReLU, ${a.epochs} epochs, ` +
      `${a['typos-per-word']} typos/word/epoch, batch ${a['batch-size']}, lr ${a.lr}, seed ${a.seed}, backend ${backend}`,
    '',
    '| heads | label order | classifier params | clean top-1 | clean top-5 | 1-edit top-5 | 2-edit top-5 | common misspellings top-5 | Wikipedia top-5 | train s | serve ms / 256 |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.heads.length === 1 ? `OHE [${r.heads[0]}]` : `MHE [${r.heads.join(', ')}]`} | ${r.heads.length === 1 ? '-' : r.order} | ${r.headParams.toLocaleString('en-US')} | ` +
        `${pct(r.suite.clean.top1)} | ${pct(r.suite.clean.top5)} | ${pct(r.suite.typo1.top5)} | ${pct(r.suite.typo2.top5)} | ` +
        `${pct(r.suite.common.top5)} | ${pct(r.suite.wikipedia.top5)} | ${r.trainSeconds.toFixed(0)} | ${r.serveMsPer256.toFixed(1)} |`,
    ),
  ]
  process.stdout.write(lines.join('\n') + '\n')
  if (a.json !== undefined) {
    await writeFile(a.json, JSON.stringify({ numLabels: C, hidden, epochs: Number(a.epochs), backend, argv: process.argv.slice(2), rows }, null, 2) + '\n')
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`train:compare: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
