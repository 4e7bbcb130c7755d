// Property-based fuzzing of POST /predict (fast-check, in-process via app.inject): random and damaged bodies,
// content types, query strings and binary lengths. Never a 5xx, never a hang; errors in our shape with a known
// code; every 200 well-formed; and the answer class the documented interface predicts (test/helpers/fuzz.ts).
// Set FUZZ_SEED to replay a run; FUZZ_SCALE multiplies the case counts.
import t from 'tap'
import fc from 'fast-check'
import { testApp, testBundle, numTensors } from '../helpers/server.js'
import { checkResponse, describe, familyArbs, sendInject, type FuzzRequest, type FuzzTarget } from '../helpers/fuzz.js'

const target: FuzzTarget = {
  featureDim: 8,
  heads: [5, 7],
  numLabels: 30, // < 35: ids 30..34 exist in the product and must never come back
  maxInstances: 16,
  maxTopK: 50, // > numLabels: top_k then has numLabels entries
  bodyLimit: 256 * 1024,
  labelPrefix: 'label-',
}
// Generous: only a request that never settles trips it (a hang), not a slow machine.
const HANG_MS = 30_000
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Date.now() ^ (Math.random() * 2 ** 31)
const scale = Number(process.env.FUZZ_SCALE ?? '1')

const bundle = await testBundle(t, { featureDim: target.featureDim, heads: target.heads, numLabels: target.numLabels, seed: 3, outputs: 'concat' })
const app = await testApp(t, bundle, {
  MHE_MAX_INSTANCES: String(target.maxInstances),
  MHE_MAX_TOP_K: String(target.maxTopK),
  MHE_BODY_LIMIT: String(target.bodyLimit),
  MHE_MAX_DELAY_MS: '0',
  // Fuzzing is about input, not load: the event-loop guard would answer 503 when a 60k-deep body meets a busy machine.
  MHE_MAX_EVENT_LOOP_DELAY_MS: '0',
})

// Bugs this fuzzing found, replayed first in every run.
const d = target.featureDim
const json = (text: string, path = '/predict'): FuzzRequest => ({ family: 'regression', path, contentType: 'application/json', payload: Buffer.from(text) })
const regressions: Record<string, FuzzRequest[]> = {
  // Large finite features overflowed float32 in the model: NaN scores, then a 500 from the serializer.
  json: [json(`{"instances":[[${new Array(d).fill('3.4e38').join(',')}],[${new Array(d).fill('-3.4e38').join(',')}]]}`)],
  'json-mutated': [
    // top_k nested 60,000 deep: printing it for the message overflowed the stack (500 in Fastify's own shape).
    json(`{"instances":[[${new Array(d).fill(0).join(',')}]],"top_k":${'['.repeat(60_000)}${']'.repeat(60_000)}}`),
    // A bad query top_k was silently ignored when the body had one (1e400 even passed the schema, as Infinity).
    json(`{"instances":[[${new Array(d).fill(0).join(',')}]],"top_k":1}`, '/predict?top_k=1e400'),
    json(`{"instances":[[${new Array(d).fill(0).join(',')}]],"top_k":2}`, '/predict?top_k=99'),
  ],
  binary: [{ family: 'regression', path: '/predict', contentType: 'application/octet-stream', payload: Buffer.from(new Float32Array(2 * d).fill(3.4e38).buffer) }],
  // No Content-Type and no body: the handler got undefined and threw (500).
  random: [{ family: 'regression', path: '/predict', contentType: undefined, payload: Buffer.alloc(0) }],
}

const runs: Record<keyof ReturnType<typeof familyArbs>, number> = { json: 1200, 'json-mutated': 1300, binary: 900, random: 400 }
let total = 0
const byStatus = new Map<number, number>()

t.comment(`fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`)
await app.inject({ method: 'POST', url: '/predict', payload: { instances: [new Array(target.featureDim).fill(0)] } })
const tensorsBefore = numTensors(app)

for (const [family, arb] of Object.entries(familyArbs(target))) {
  t.test(`${family} requests`, async (t) => {
    let cases = 0
    const property = fc.asyncProperty(arb, async (req: FuzzRequest) => {
      cases++
      const res = await sendInject(app, req, HANG_MS)
      byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1)
      const why = checkResponse(target, req, res)
      if (why !== undefined) throw new Error(`${why}\n  request: ${describe(req)}`)
    })
    const details = await fc.check(property, {
      numRuns: Math.round(runs[family as keyof typeof runs] * scale),
      seed,
      examples: (regressions[family] ?? []).map((r) => [r] as [FuzzRequest]),
    })
    if (details.failed) t.fail(`${String(details.errorInstance)}\n${fc.defaultReportMessage(details) ?? ''}`)
    else t.pass(`${details.numRuns} ${family} cases hold`)
    total += cases
    t.comment(`${family}: ${cases} cases`)
  })
}

t.test('the bugs found by fuzzing stay fixed: exact answers', async (t) => {
  const expected: [FuzzRequest, number, string][] = [
    [regressions.json![0]!, 400, 'MHE_BAD_INSTANCE'],
    [regressions.binary![0]!, 400, 'MHE_BAD_INSTANCE'],
    [regressions['json-mutated']![0]!, 400, 'MHE_BAD_TOP_K'],
    [regressions['json-mutated']![1]!, 400, 'MHE_BAD_TOP_K'],
    [regressions['json-mutated']![2]!, 400, 'MHE_BAD_TOP_K'],
    [regressions.random![0]!, 415, 'MHE_UNSUPPORTED_MEDIA_TYPE'],
  ]
  for (const [req, status, code] of expected) {
    const res = await sendInject(app, req, HANG_MS)
    const body = JSON.parse(res.body) as { code: string; message: string }
    t.equal(res.statusCode, status, `${req.path} ${req.payload.subarray(0, 40).toString()}: status`)
    t.equal(body.code, code, 'code')
    t.ok(body.message.length < 300, 'the message does not echo the whole input')
  }
})

t.test('afterwards: still ready, no tensor leaked by any error path, a valid request still answers', async (t) => {
  t.comment(`fuzz cases in total: ${total}; statuses: ${[...byStatus].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}x${n}`).join(' ')}`)
  t.ok(total >= 3000, `${total} cases run`)
  t.ok((byStatus.get(200) ?? 0) > total / 20, 'a fair share of the cases got past validation to the model')
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  t.equal(numTensors(app), tensorsBefore, 'tensor count unchanged')
  const res = await app.inject({ method: 'POST', url: '/predict', payload: { instances: [new Array(target.featureDim).fill(0.5)], top_k: 3 } })
  t.equal(res.statusCode, 200)
})
