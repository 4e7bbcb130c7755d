// The codec against brute force: mixed-radix round trips and Theorem 1 (argmax / top-k of the Kronecker product).
import t from 'tap'
import fc from 'fast-check'
import { compose, decompose, exactTopK, mergeTopK, strides } from '../../src/mhe/codec.js'

const logSoftmax = (row: number[]): number[] => {
  const max = Math.max(...row)
  const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0))
  return row.map((v) => v - lse)
}

/** Every id of the full product, scored by brute force (Kronecker product of probabilities), ids >= C removed. */
function bruteForce(logProbs: number[][], heads: number[], numLabels: number): { id: number; logScore: number }[] {
  const product = heads.reduce((a, n) => a * n, 1)
  const all: { id: number; logScore: number }[] = []
  for (let id = 0; id < product; id++) {
    // Digits by repeated division, most significant first, written independently of the codec.
    let rest = id
    let logScore = 0
    for (let h = heads.length - 1; h >= 0; h--) {
      logScore += logProbs[h]![rest % heads[h]!]!
      rest = Math.floor(rest / heads[h]!)
    }
    if (id < numLabels) all.push({ id, logScore })
  }
  return all.sort((a, b) => b.logScore - a.logScore || a.id - b.id)
}

t.test('strides: head 1 is the most significant digit', async (t) => {
  t.same(strides([10, 20, 30]), [600, 30, 1])
  t.same(strides([7]), [1])
  t.same(decompose(4211, [100, 100]), [42, 11])
  t.equal(compose([42, 11], [100, 100]), 4211)
})

t.test('decompose/compose round trip over every id', async (t) => {
  for (const heads of [[7], [2, 3], [3, 2], [5, 7, 11], [4, 4, 4, 4], [13, 1, 9], [2, 2, 2, 2, 2, 2, 2]]) {
    const product = heads.reduce((a, n) => a * n, 1)
    const s = strides(heads)
    let ok = true
    for (let id = 0; id < product; id++) {
      const local = decompose(id, heads)
      const expected = heads.map((n, h) => Math.floor(id / s[h]!) % n)
      if (compose(local, heads) !== id || local.some((y, h) => y !== expected[h] || y < 0 || y >= heads[h]!)) ok = false
    }
    t.ok(ok, `heads ${JSON.stringify(heads)}: all ${product} ids round-trip`)
  }
})

// Random head shapes (single head included), C anywhere from 1 to the product, random logits.
const headsCase = fc
  .array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 })
  .filter((heads) => heads.reduce((a, n) => a * n, 1) <= 3000)
  .chain((heads) => {
    const product = heads.reduce((a, n) => a * n, 1)
    return fc.record({
      heads: fc.constant(heads),
      numLabels: fc.integer({ min: 1, max: product }),
      k: fc.integer({ min: 1, max: 12 }),
      logits: fc.tuple(
        ...heads.map((n) => fc.array(fc.double({ min: -8, max: 8, noNaN: true }), { minLength: n, maxLength: n })),
      ),
    })
  })

t.test('Theorem 1: exact top-k equals brute force over the full product, ids >= C removed', async (t) => {
  let cases = 0
  fc.assert(
    fc.property(headsCase, ({ heads, numLabels, k, logits }) => {
      const logProbs = logits.map((row) => logSoftmax(row))
      const expected = bruteForce(logProbs, heads, numLabels).slice(0, k)
      const got = exactTopK(logProbs, heads, numLabels, k)
      cases++
      if (got.length !== expected.length) return false
      return got.every((c, i) => {
        const e = expected[i]!
        // Equal scores may legitimately swap places; the score sequence must match and ids must be valid.
        return Math.abs(c.logScore - e.logScore) < 1e-9 && c.id < numLabels && compose(c.headIds, heads) === c.id &&
          (c.id === e.id || Math.abs(c.logScore - e.logScore) < 1e-12)
      })
    }),
    { numRuns: 1500, seed: 20261126 },
  )
  t.equal(cases, 1500)
})

t.test('argmax: composition of per-head argmaxes when valid, best valid id otherwise', async () => {
  fc.assert(
    fc.property(headsCase, ({ heads, numLabels, logits }) => {
      const logProbs = logits.map((row) => logSoftmax(row))
      const best = bruteForce(logProbs, heads, numLabels)[0]!
      const got = exactTopK(logProbs, heads, numLabels, 1)
      return got.length === 1 && Math.abs(got[0]!.logScore - best.logScore) < 1e-9 && got[0]!.id < numLabels
    }),
    { numRuns: 1000, seed: 7 },
  )
})

t.test('mergeTopK asks for more candidates when ids past C crowd them', async (t) => {
  // heads [3, 4], C = 9: ids 9..11 have head-1 digit 2. Make head 1 prefer 2, so the raw argmax is invalid.
  const heads = [3, 4]
  const h1 = logSoftmax([0, 1, 5])
  const h2 = logSoftmax([0, 3, 1, 2])
  const sorted = (row: number[]) => {
    const idx = row.map((_, i) => i).sort((a, b) => row[b]! - row[a]!)
    return { indices: idx, logProbs: idx.map((i) => row[i]!) }
  }
  const lists = [h1, h2].map(sorted)
  const top1 = (kPrime: number) =>
    mergeTopK(lists.map((l, h) => ({ indices: l.indices.slice(0, Math.min(heads[h]!, kPrime)), logProbs: l.logProbs.slice(0, Math.min(heads[h]!, kPrime)) })), heads, 9, 1, kPrime)
  t.equal(top1(1), null, 'the raw argmax (2, 1) -> 9 is out of range and nothing else was looked at')
  const exact = exactTopK([h1, h2], heads, 9, 1)
  // Candidates: (2,0) -> 8 scores 5+0, (1,1) -> 5 scores 1+3; the best valid id keeps head 1's choice.
  t.same(exact.map((c) => c.id), [8], 'best valid id is (2, 0) -> 8')
  t.same(exact[0]!.headIds, [2, 0])
  t.same(exactTopK([h1, h2], heads, 9, 20).map((c) => c.id).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8],
    'asking for more than C returns every valid label once')
})

t.test('single head is plain one-hot classification', async (t) => {
  const row = logSoftmax([0.1, 2, -1, 3, 0.5])
  t.same(exactTopK([row], [5], 5, 3).map((c) => c.id), [3, 1, 4])
  t.same(exactTopK([row], [5], 3, 2).map((c) => c.id), [1, 0], 'ids >= C dropped even for one head')
})
