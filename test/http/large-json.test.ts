// Large JSON bodies are parsed on the JSON thread (src/http/json-thread.ts) into packed instances: the answers, and
// every refusal with its message, are those of the event-loop path that small bodies take.
import t from 'tap'
import type { InjectOptions } from 'fastify'
import { randomFeatures } from '../helpers/bundles.js'
import { testApp, testBundle } from '../helpers/server.js'
import { OFF_LOOP_BYTES } from '../../src/http/plugins/input.js'

const d = 256
const bundle = await testBundle(t, { featureDim: d, heads: [8, 8], numLabels: 64, seed: 5 })
const app = await testApp(t, bundle, { MHE_MAX_INSTANCES: '400' })
const n = 300
const features = randomFeatures(n, d, 11)
const rows = Array.from({ length: n }, (_, i) => Array.from(features.subarray(i * d, (i + 1) * d)))
const post = (payload: string, url = '/predict'): InjectOptions => ({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } })
const big = (o: object) => {
  const s = JSON.stringify(o)
  return s.length >= OFF_LOOP_BYTES ? s : s.slice(0, -1) + ' '.repeat(OFF_LOOP_BYTES) + '}' // whitespace: still the same JSON
}

t.test('a large body answers what the same instances answer in small requests and as binary', async (t) => {
  const body = big({ instances: rows, top_k: 3 })
  t.ok(body.length >= OFF_LOOP_BYTES, `large: ${body.length} bytes`)
  const res = await app.inject(post(body))
  t.equal(res.statusCode, 200, res.body.slice(0, 200))
  const got = res.json().predictions as { label_id: number; top_k: { label_id: number; score: number }[] }[]
  t.equal(got.length, n)
  const binary = await app.inject({ method: 'POST', url: '/predict/binary?top_k=3', payload: Buffer.from(features.buffer), headers: { 'content-type': 'application/octet-stream' } })
  t.strictSame(got, binary.json().predictions, 'the same as the binary route')
  const small = await app.inject(post(JSON.stringify({ instances: rows.slice(7, 8), top_k: 3 })))
  t.strictSame(small.json().predictions[0], got[7], 'instance 7 alone, parsed on the event loop')
  const queryK = await app.inject(post(big({ instances: rows }), '/predict?top_k=2'))
  t.equal(queryK.json().predictions[0].top_k.length, 2, 'top_k from the query')
})

t.test('large bodies are refused with the messages small ones get', async (t) => {
  const bad = (i: number, row: unknown[]) => rows.map((r, j) => (j === i ? row : r))
  const cases: [string, string, number, string, RegExp][] = [
    ['a short row', big({ instances: bad(5, rows[5]!.slice(1)) }), 400, 'MHE_BAD_INSTANCE', /instance 5 has 255 values, the model expects 256/],
    ['a value too big for float32', big({ instances: bad(9, [...rows[9]!.slice(0, 3), 1e39, ...rows[9]!.slice(4)]) }), 400, 'MHE_BAD_INSTANCE', /instance 9 value 3 is 1e\+39/],
    ['a string among the numbers', big({ instances: bad(2, ['x', ...rows[2]!.slice(1)]) }), 400, 'MHE_BAD_REQUEST', /instances\/2\/0 must be number/],
    ['an unknown field', big({ instances: rows, extra: 1 }), 400, 'MHE_BAD_REQUEST', /unknown body field "extra"/],
    ['top_k a string', big({ instances: rows, top_k: '3' }), 400, 'MHE_BAD_TOP_K', /got "3"/],
    ['top_k 0', big({ instances: rows, top_k: 0 }), 400, 'MHE_BAD_TOP_K', /got 0/],
    ['no instances', big({ instances: [] }), 400, 'MHE_EMPTY_BATCH', /at least one instance/],
    ['too many instances', big({ instances: [...rows, ...rows] }), 400, 'MHE_TOO_MANY_INSTANCES', /at most 400 instances per request, got 600/],
    ['malformed', big({ instances: rows }).slice(0, -2), 400, 'MHE_MALFORMED_JSON', /not valid JSON/],
    ['an array, not an object', JSON.stringify(rows), 400, 'MHE_BAD_REQUEST', /must be object/],
    ['a bracket bomb', '['.repeat(OFF_LOOP_BYTES + 10), 400, 'MHE_JSON_TOO_DEEP', /deeper than the 3 levels/],
    ['instances one level too deep', big({ instances: [rows] }), 400, 'MHE_JSON_TOO_DEEP', /3 levels/],
  ]
  for (const [name, body, status, code, message] of cases) {
    t.ok(body.length >= OFF_LOOP_BYTES, `${name}: large`)
    const res = await app.inject(post(body))
    t.equal(res.statusCode, status, `${name}: status`)
    t.equal(res.json().code, code, `${name}: code`)
    t.match(res.json().message, message, `${name}: message`)
  }
  const both = await app.inject(post(big({ instances: rows, top_k: 2 }), '/predict?top_k=3'))
  t.match(both.json().message, /top_k is given in both/, 'top_k twice')
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'still ready')
})
