// The shared featurizer: deterministic bytes, golden values, settings that survive the manifest round trip.

import t from 'tap'
import {
  DEFAULT_NGRAMS,
  featurize,
  featurizeBatch,
  featurizeSparse,
  fnv1a32,
  ngrams,
  parseNgramSettings,
} from '../../tools/features/ngrams.js'

t.test('fnv1a32 matches the published FNV-1a test vectors', async (t) => {
  t.equal(fnv1a32(''), 0x811c9dc5)
  t.equal(fnv1a32('a'), 0xe40c292c)
  t.equal(fnv1a32('foobar'), 0xbf9cf968)
})

t.test('n-grams of a word: boundary markers, orders 1-3 and skip bigrams', async (t) => {
  t.same(
    ngrams('Cat', DEFAULT_NGRAMS).map((g) => g.gram),
    ['1:c', '1:a', '1:t', '2:<c', '2:ca', '2:at', '2:t>', '3:<ca', '3:cat', '3:at>', 's:<a', 's:ct', 's:a>'],
  )
})

t.test('golden features of "cat" and "their"', async (t) => {
  const cat = featurizeSparse('cat', DEFAULT_NGRAMS)
  t.same(Array.from(cat.indices), [1132, 1362, 1407, 1615, 1699, 2505, 2511, 2564, 2633, 3296, 3536, 3585, 3879])
  // Unigram and skip weights 0.5, bigrams and trigrams 1, then L2 norm: 1/sqrt(8.5) and half of it.
  const big = 1 / Math.sqrt(8.5)
  const expected = [big, big / 2, big / 2, big, big / 2, big / 2, big / 2, big, big, big, big, big, big / 2]
  cat.values.forEach((v, i) => t.ok(Math.abs(v - expected[i]!) < 1e-6, `value ${i}`))
  const their = featurizeSparse('their', DEFAULT_NGRAMS)
  t.same(Array.from(their.indices), [21, 217, 252, 307, 535, 1230, 1337, 1362, 1496, 1552, 1633, 1783, 1994, 2051, 2466, 2699, 2851, 2974, 3040, 3103, 4005])
})

t.test('same input gives identical bytes; dense, sparse and batch forms agree', async (t) => {
  for (const w of ['accommodate', 'thier', 'a', '']) {
    const a = featurize(w, DEFAULT_NGRAMS)
    const b = featurize(w, { ...DEFAULT_NGRAMS })
    t.equal(a.length, DEFAULT_NGRAMS.dim)
    t.same(Buffer.from(a.buffer), Buffer.from(b.buffer), `bytes of ${JSON.stringify(w)}`)
  }
  const batch = featurizeBatch(['receive', 'recieve'], DEFAULT_NGRAMS)
  t.same(batch.subarray(0, DEFAULT_NGRAMS.dim), featurize('receive', DEFAULT_NGRAMS))
  t.same(batch.subarray(DEFAULT_NGRAMS.dim), featurize('recieve', DEFAULT_NGRAMS))
  const norm = Math.hypot(...featurize('accommodate', DEFAULT_NGRAMS))
  t.ok(Math.abs(norm - 1) < 1e-6, 'L2-normalised')
  t.equal(featurizeSparse('', DEFAULT_NGRAMS).indices.length, 1, 'empty word: only the "<>" bigram')
})

t.test('upper case is folded, and signed hashing gives negative values', async (t) => {
  t.same(featurize('Their', DEFAULT_NGRAMS), featurize('their', DEFAULT_NGRAMS))
  const signed = featurizeSparse('accommodate', { ...DEFAULT_NGRAMS, signed: true })
  t.ok(Array.from(signed.values).some((v) => v < 0))
})

t.test('settings round trip through the manifest JSON', async (t) => {
  const custom = { ...DEFAULT_NGRAMS, dim: 1000, orders: [2, 3], skipBigrams: false }
  const back = parseNgramSettings(JSON.parse(JSON.stringify(custom)))
  t.same(back, custom)
  t.same(featurize('separate', back), featurize('separate', custom))
  t.throws(() => parseNgramSettings({ ...custom, type: 'words' }), /"type" must be "char-ngrams"/)
  t.throws(() => parseNgramSettings({ ...custom, dim: 0 }), /"dim" must be a positive integer/)
  t.throws(() => parseNgramSettings({ ...custom, hash: 'md5' }), /"hash" must be "fnv1a32"/)
  t.throws(() => parseNgramSettings(null), /expected an object/)
})
