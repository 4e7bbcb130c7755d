// The demo's re-ranker: the spelling-error cost, the combined score and its confidence, the settings parser,
// the prior file, the tuning set's separation from the evaluation list, and the aspell/hunspell pipe parser.

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { errorCost, loadPrior, parseRerankSettings, rerank } from '../../tools/demo/rerank.js'
import { suggest, spellerVersion, type Speller } from '../../tools/demo/spellers.js'
import { wikipediaPairs } from '../../tools/train/misspellings.js'
import { frequencyPrior } from '../../tools/train/prior.js'
import * as tf from '@tensorflow/tfjs'
import '@tensorflow/tfjs-backend-wasm'
import { writeBundle } from '../../tools/bundle/write.js'
import { DEFAULT_NGRAMS } from '../../tools/features/ngrams.js'
import { train } from '../../tools/train/train.js'
import { fitRerank, PRIOR_FILE, tuningPairs } from '../../tools/train/rerank-fit.js'
import { loadWords } from '../../tools/train/words.js'

const SETTINGS = { modelWeight: 0.15, priorWeight: 0.2, editWeight: 6, temperature: 1, noneScore: -10 }

t.test('errorCost: cheap for the errors people make, dearer for others', async (t) => {
  t.equal(errorCost('their', 'their'), 0)
  t.equal(errorCost('thier', 'their'), 0.6, 'transposition')
  t.equal(errorCost('accomodate', 'accommodate'), 0.4, 'a dropped double letter')
  t.equal(errorCost('untill', 'until'), 0.4, 'a doubled letter')
  t.ok(errorCost('seperate', 'separate') < errorCost('sebarate', 'separate'), 'a vowel swap costs less than a consonant')
  t.equal(errorCost('consience', 'conscience'), 1, 'a dropped consonant')
  t.equal(errorCost('definately', 'definitely'), 0.6, 'a vowel swap')
  t.equal(errorCost('hte', 'the'), 0.6 + 0.5, 'a wrong first letter costs extra')
  t.equal(errorCost('', 'ab'), 0.8 + 1, 'a dropped vowel costs less than a consonant')
  t.equal(errorCost('xyzzy', 'cat'), errorCost('xyzzy', 'cat'), 'deterministic')
})

t.test('rerank: model, frequency and error cost combined; confidences in [0, 1], best first', async (t) => {
  const prior = (l: string) => ({ their: 9, thief: 4, there: 9 })[l] ?? 0
  const cands = [{ label: 'thief', score: 0.5 }, { label: 'there', score: 0.3 }, { label: 'their', score: 0.2 }]
  const r = rerank('thier', cands, prior, SETTINGS)
  t.same(r.map((c) => c.label), ['their', 'thief', 'there'], 'the cheap transposition of a common word wins')
  t.ok(r.every((c, i) => c.score >= 0 && c.score <= 1 && (i === 0 || r[i - 1]!.score >= c.score)))
  t.ok(r.reduce((a, c) => a + c.score, 0) < 1, 'some mass stays on "none of these"')
  t.equal(r[0]!.modelScore, 0.2, 'the model score is kept')
  // The typed word itself, when it is a candidate, beats near neighbours (a known word stays as typed).
  t.equal(rerank('there', cands, prior, SETTINGS)[0]!.label, 'there')
  // Far from every candidate: "none of these" takes the confidence.
  t.ok(rerank('qqqqqq', cands, prior, SETTINGS)[0]!.score < 0.05)
  t.same(rerank('x', [], prior, SETTINGS), [])
})

t.test('parseRerankSettings: absent, valid, and errors naming the field', async (t) => {
  t.equal(parseRerankSettings(undefined), undefined)
  t.equal(parseRerankSettings({ type: 'char-ngrams' }), undefined)
  const ok = { candidates: 100, prior: 'prior.txt', ...SETTINGS, threshold: 0.5 }
  t.same(parseRerankSettings({ rerank: ok }), ok)
  t.throws(() => parseRerankSettings({ rerank: 3 }), /expected an object/)
  t.throws(() => parseRerankSettings({ rerank: { ...ok, editWeight: 'x' } }), /"editWeight" must be a number/)
  t.throws(() => parseRerankSettings({ rerank: { ...ok, prior: '' } }), /"prior" must name a file/)
})

t.test('loadPrior: one number a line, aligned with the labels; unknown labels get the lowest', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mhe-prior-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'prior.txt'), '3.5\n-1\n2\n')
  const prior = await loadPrior(join(dir, 'prior.txt'), ['a', 'b', 'c'])
  t.same(['a', 'b', 'c', 'zzz'].map(prior), [3.5, -1, 2, -1])
})

t.test('frequencyPrior: common words above rare ones, words no list knows lowest', async (t) => {
  const [the, their, abacus, unknown] = frequencyPrior(['the', 'their', 'abacus', 'qzxv'])
  t.ok(the! > their! && their! > abacus! && abacus! > unknown!)
})

t.test('tuningPairs: the re-ranker is fitted on nothing from the evaluation list', async (t) => {
  const labels = loadWords(35, ['english', 'american', 'british']).words
  const pairs = tuningPairs(labels)
  const evalInputs = new Set(wikipediaPairs().map(([w]) => w))
  t.equal(pairs.filter((p) => evalInputs.has(p.typed)).length, 0, 'no typed form of the Wikipedia list')
  for (const set of ['typo', 'real', 'clean', 'nonsense'] as const) t.ok(pairs.some((p) => p.set === set), `has ${set} cases`)
  t.same(tuningPairs(labels), pairs, 'seeded: the same every run')
})

t.test('suggest: parses the ispell pipe protocol of aspell and hunspell', async (t) => {
  // A stand-in checker speaking the same protocol: banner, then per word '*' (known), '&' (suggestions), '#' (none).
  const script = `
    let input = ''; process.stdin.on('data', (d) => (input += d)); process.stdin.on('end', () => {
      const out = ['@(#) International Ispell Version 3.1.20 (but really Aspell 0.60.8)']
      for (const line of input.split('\\n').filter(Boolean)) {
        const w = line.slice(1)
        if (w === 'the') out.push('*')
        else if (w === 'thier') out.push('& thier 3 0: their, Thieu, thief')
        else out.push('# ' + w + ' 0')
        out.push('')
      }
      process.stdout.write(out.join('\\n') + '\\n')
    })`
  const fake: Speller = { name: 'fake', command: process.execPath, args: ['-e', script] }
  t.same(await suggest(fake, ['the', 'thier', 'qqq']), [['the'], ['their', 'thieu', 'thief'], []])
  t.match(await spellerVersion(fake), /really Aspell 0\.60\.8/)
  t.equal(await spellerVersion({ name: 'none', command: 'no-such-speller-here', args: [] }), undefined)
  await t.rejects(suggest({ name: 'bad', command: process.execPath, args: ['-e', 'process.exit(3)'] }, ['x']), /exited with 3/)
})

t.test('fitRerank: writes the prior and settings into a trained bundle, keeping clean words right', async (t) => {
  await tf.setBackend('wasm')
  const labels = loadWords(10).words.slice(0, 150)
  const features = { ...DEFAULT_NGRAMS, dim: 512 }
  const heads = [13, 12]
  const { model } = await train({ labels, features, heads, hidden: [64], epochs: 4, batchSize: 64, lr: 0.01, seed: 5, typosPerWord: 1, twoEditShare: 0 })
  const dir = await mkdtemp(join(tmpdir(), 'mhe-fit-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const layers = await model.toLayersModel()
  await writeBundle(dir, {
    manifest: { name: 'fit', version: '1', featureDim: features.dim, heads, numLabels: labels.length, outputs: 'logits', features: { ...features } },
    model: layers,
    labels,
  })
  layers.dispose()
  model.dispose()
  const lines: string[] = []
  const fit = await fitRerank(dir, (s) => lines.push(s))
  const manifest = JSON.parse(await readFile(join(dir, 'mhe.json'), 'utf8')) as { features: { rerank: unknown }; training: { rerankFit: unknown } }
  t.same(parseRerankSettings(manifest.features), fit.settings, 'settings stored in features.rerank')
  t.same(manifest.training.rerankFit, fit.tuning)
  const prior = (await readFile(join(dir, PRIOR_FILE), 'utf8')).trim().split('\n').map(Number)
  t.same(prior, frequencyPrior(labels), 'one prior a label, in label order')
  t.ok((fit.tuning.top1 as { clean: number }).clean >= 0.99, 'clean words stay right')
  t.ok(fit.settings.threshold >= 0 && fit.settings.threshold <= 1 && fit.settings.temperature > 0, `threshold ${fit.settings.threshold} in [0, 1]`)
  t.ok([100, 200, 300].includes(fit.settings.candidates), `${fit.settings.candidates} candidates, one of the counts tried`)
  t.match(lines.join('\n'), /re-rank fit: (100|200|300) candidates, model x[\d.]+, prior x[\d.]+, edit cost x[\d.]+/)
})
