// `npm run train:serve-bench -- …`: serving time per batch of 256 (loadBundle + Engine.predict, top-5) of MHE and
// OHE classifiers on the same backbone. Weights are random (time does not depend on them), so the full label
// count can be timed even where OHE is too slow to train; the bundles are timed round-robin so machine noise
// hits them alike.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { loadBundle } from '../../src/engine/model-load.js'
import { writeBundle } from '../bundle/write.js'
import { Engine } from '../../src/engine/engine.js'
import { outputWidth } from '../../src/mhe/codec.js'
import { DEFAULT_NGRAMS, featurizeBatch } from '../features/ngrams.js'
import { useBackend } from './suite.js'
import { balancedHeads } from './train.js'
import { loadWords } from './words.js'
import { median } from '../lib/stats.js'

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      'num-labels': { type: 'string', default: '61446' },
      configs: { type: 'string', default: 'ohe,2,3' },
      hidden: { type: 'string', default: '1024' },
      batch: { type: 'string', default: '256' },
      reps: { type: 'string', default: '15' },
      backend: { type: 'string', default: 'wasm' },
    },
  })
  const C = Number(a['num-labels'])
  const hidden = Number(a.hidden)
  const n = Number(a.batch)
  const backend = await useBackend(a.backend)
  const words = loadWords(70).words
  const labels = Array.from({ length: C }, (_, i) => words[i] ?? `label${i}`)
  const x = featurizeBatch(labels.slice(0, n), DEFAULT_NGRAMS)
  const tmp = await mkdtemp(join(tmpdir(), 'mhe-serve-bench-'))
  const engines: { heads: number[]; engine: Engine; times: number[] }[] = []
  try {
    for (const c of a.configs.split(',')) {
      const heads = c === 'ohe' ? [C] : c.includes('x') ? c.split('x').map(Number) : balancedHeads(C, Number(c))
      const model = tf.sequential({
        layers: [
          tf.layers.dense({ units: hidden, activation: 'relu', inputShape: [DEFAULT_NGRAMS.dim] }),
          tf.layers.dense({ units: outputWidth(heads) }),
        ],
      })
      const dir = join(tmp, heads.join('x'))
      await writeBundle(dir, {
        manifest: { name: 'bench', version: '1', featureDim: DEFAULT_NGRAMS.dim, heads, numLabels: C, outputs: 'logits' },
        model,
        labels,
      })
      model.dispose()
      const engine = await Engine.create(await loadBundle(dir), backend)
      await engine.warmUp()
      await engine.predict(x, n, new Array<number>(n).fill(5))
      engines.push({ heads, engine, times: [] })
    }
    for (let r = 0; r < Number(a.reps); r++) {
      for (const e of engines) {
        const t0 = performance.now()
        await e.engine.predict(x, n, new Array<number>(n).fill(5))
        e.times.push(performance.now() - t0)
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true })
  }
  process.stdout.write(
    `C = ${C}, backbone sparse ${DEFAULT_NGRAMS.dim} -> ${hidden} ReLU, batch ${n}, top-5, backend ${backend}, median of ${a.reps} (round-robin)\n\n` +
      '| heads | classifier params | ms / batch | min ms |\n| --- | ---: | ---: | ---: |\n' +
      engines
        .map((e) => {
          const params = (hidden + 1) * outputWidth(e.heads)
          const name = e.heads.length === 1 ? `OHE [${e.heads[0]}]` : `MHE [${e.heads.join(', ')}]`
          return `| ${name} | ${params.toLocaleString('en-US')} | ${median(e.times).toFixed(1)} | ${Math.min(...e.times).toFixed(1)} |`
        })
        .join('\n') +
      '\n',
  )
  for (const e of engines) e.engine.dispose()
}

main().catch((err: unknown) => {
  process.stderr.write(`serve-bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
