// In-process (so coverage sees it): Node's parser errors in our shape, the whole-request deadline, 100-continue after
// the checks, the in-flight byte limit. test/system/hostile.test.ts runs the same against a real process.
import t from 'tap'
import { testApp, testBundle } from '../helpers/server.js'
import { rawRequest, RawConnection } from '../helpers/raw-http.js'
import { parserError } from '../../src/http/client-errors.js'

const bundle = await testBundle(t, { featureDim: 4, heads: [3, 3], numLabels: 9, seed: 2 })
const app = await testApp(t, bundle, { MHE_BODY_TIMEOUT_MS: '300', MHE_REQUEST_TIMEOUT_MS: '2000', MHE_BODY_LIMIT: '4096', MHE_MAX_INFLIGHT_BYTES: '4096' })
const url = await app.listen({ port: 0, host: '127.0.0.1' })
const code = (body: string | undefined) => (JSON.parse(body ?? '{}') as { code?: string }).code

t.test('parser errors and the deadline, in our shape', async (t) => {
  const garbage = await rawRequest(url, 'HELLO\r\n\r\n')
  t.equal(garbage.answers[0]?.status, 400)
  t.equal(code(garbage.answers[0]?.body), 'MHE_BAD_HTTP')
  const big = await rawRequest(url, `GET /health/live HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(20000)}\r\n\r\n`)
  t.equal(code(big.answers[0]?.body), 'MHE_HEADERS_TOO_LARGE')
  const slow = await rawRequest(url, 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{')
  t.equal(slow.answers[0]?.status, 408)
  t.equal(code(slow.answers[0]?.body), 'MHE_REQUEST_TIMEOUT')
  t.equal(parserError(Object.assign(new Error('x'), { code: 'ERR_HTTP_HEADERS_TIMEOUT' }), 300).code, 'MHE_REQUEST_TIMEOUT')
  t.match(parserError(new Error('no code'), 300).message, /unknown/)
})

t.test('100-continue after the checks; bodies past the in-flight limit refused before they are read', async (t) => {
  const c = new RawConnection(url)
  await c.send('POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 25\r\n\r\n')
  const first = await c.wait((x) => x.answers.length > 0)
  t.equal(first.answers[0]?.status, 100)
  await c.send('{"instances":[[1,2,3,4]]}')
  const done = await c.wait((x) => x.answers.some((a) => a.status === 200))
  t.ok(done.answers.some((a) => a.status === 200), 'then answered')
  c.destroy()
  // One body of 4 KiB declared and held (it never completes), a second does not fit.
  const holder = new RawConnection(url)
  await holder.send('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{')
  await new Promise((r) => setTimeout(r, 50))
  const refused = await rawRequest(url, 'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{')
  t.equal(refused.answers[0]?.status, 503)
  t.equal(code(refused.answers[0]?.body), 'MHE_OVERLOADED')
  holder.destroy()
})
