// A hostile client against the real server process (issue 17): bodies that never finish, slow and silent sockets,
// too many connections, a bracket bomb, malformed HTTP, smuggling shapes, huge headers and URLs, Expect:
// 100-continue, wrong methods, unknown query parameters, content-type tricks, wrong binary lengths, request ids, a
// token in the URL, and peak memory within the budget the settings give. Small timeouts keep it short; every wait
// has a generous bound that only guards against a hang.
import t, { type Test } from 'tap'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { randomFeatures } from '../helpers/bundles.js'
import { testBundle } from '../helpers/server.js'
import { startServer } from '../helpers/process.js'
import { RawConnection, rawRequest, type RawAnswer } from '../helpers/raw-http.js'
import { loadConfig, memoryBudgetBytes } from '../../src/config.js'

const d = 256
const TOKEN = 'hostile-secret-token'
const bundle = await testBundle(t, { featureDim: d, heads: [8, 8], numLabels: 64, seed: 17 })
const env = {
  MHE_MODEL: bundle.dir,
  MHE_BACKEND: 'wasm',
  MHE_API_KEYS: TOKEN,
  MHE_BODY_LIMIT: String(2 * 1024 * 1024),
  MHE_REQUEST_TIMEOUT_MS: '2000',
  MHE_BODY_TIMEOUT_MS: '1500',
  MHE_KEEP_ALIVE_TIMEOUT_MS: '1000',
  MHE_MAX_CONNECTIONS: '24',
}
// The memory check has its own process with a generous body deadline: on a loaded machine, 20 concurrent 2 MiB
// uploads may take longer than the short deadline the other tests need.
const memoryEnv = { ...env, MHE_BODY_TIMEOUT_MS: '60000' }
const [server, memoryServer] = await Promise.all([startServer(env), startServer(memoryEnv)])
t.teardown(() => {
  server.child.kill('SIGKILL')
  memoryServer.child.kill('SIGKILL')
})
const { host } = new URL(server.url)
const auth = `Authorization: Bearer ${TOKEN}\r\n`

/** One request's text: request line, Host, the given header lines, a blank line, the body. */
const http = (line: string, headers: string[] = [], body = '') => `${line}\r\nHost: ${host}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`

const good = Array.from(randomFeatures(1, d, 1), (v) => Number(v.toFixed(6)))
const jsonBody = (o: unknown) => JSON.stringify(o)
const postJson = (path: string, body: string, extra: string[] = []) =>
  http(`POST ${path} HTTP/1.1`, [`Authorization: Bearer ${TOKEN}`, 'Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`, ...extra], body)

/** Checks an answer is in our error shape with `code` and `status`. */
function shaped(t: Test, a: RawAnswer | undefined, status: number, code: string, message?: RegExp): void {
  t.ok(a, `an answer came (${code})`)
  if (!a) return
  t.equal(a.status, status, `status ${status}`)
  let body: { statusCode?: number; code?: string; error?: string; message?: string } = {}
  try {
    body = JSON.parse(a.body) as typeof body
  } catch {
    t.fail(`a JSON body, got ${JSON.stringify(a.body.slice(0, 200))}`)
  }
  t.equal(body.code, code, `code ${code}`)
  t.equal(body.statusCode, status, 'statusCode in the body')
  t.type(body.error, 'string', 'error text')
  if (message) t.match(body.message, message, 'message')
}

t.test('a body that never finishes: 408 MHE_REQUEST_TIMEOUT, then the connection is closed', async (t) => {
  const short = rawRequest(server.url, http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/json', 'Content-Length: 16384'], '{"instances":'))
  const chunked = rawRequest(server.url, http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/json', 'Transfer-Encoding: chunked'], 'a\r\n{"instance\r\n'))
  const binary = rawRequest(server.url, http('POST /predict/binary HTTP/1.1', [auth.trim(), 'Content-Type: application/octet-stream', `Content-Length: ${4 * d}`], 'abcd'))
  for (const [name, x] of [['Content-Length, 10 bytes sent', await short], ['chunked, stops', await chunked], ['binary, 4 bytes of 1 KiB', await binary]] as const) {
    t.test(name, async (t) => {
      shaped(t, x.answers[0], 408, 'MHE_REQUEST_TIMEOUT', /within 1500 ms/)
      t.equal(x.answers[0]?.headers.connection, 'close', 'Connection: close')
      t.ok(x.closed, 'the server closed the connection')
    })
  }
})

t.test('slowloris: headers that never end get 408 and are closed; a silent connection is closed', async (t) => {
  const slow = new RawConnection(server.url)
  await slow.send(`GET /health/live HTTP/1.1\r\nHost: ${host}\r\nX-Slow: a`)
  const silent = new RawConnection(server.url)
  await slow.send('b') // trickling bytes does not reset the deadline
  const x = await slow.untilClosed()
  shaped(t, x.answers[0], 408, 'MHE_REQUEST_TIMEOUT')
  t.ok(x.closed, 'slow headers: closed')
  const s = await silent.untilClosed()
  t.ok(s.closed, 'a connection that never sends a byte is closed')
  if (s.raw !== '') shaped(t, s.answers[0], 408, 'MHE_REQUEST_TIMEOUT') // Node's headers deadline counts from the connection
})

t.test('an idle keep-alive connection is closed after the keep-alive timeout', async (t) => {
  const c = new RawConnection(server.url)
  await c.send(http('GET /health/live HTTP/1.1'))
  const x = await c.untilClosed()
  t.equal(x.answers[0]?.status, 200, 'answered')
  t.match(x.answers[0]?.headers['keep-alive'] ?? '', /timeout=1/, 'told the client the timeout')
  t.ok(x.closed, 'then closed')
})

t.test('past MHE_MAX_CONNECTIONS, new connections are closed unanswered; the server serves once they go', async (t) => {
  const conns = Array.from({ length: 40 }, () => new RawConnection(server.url))
  t.teardown(() => conns.forEach((c) => c.destroy()))
  // Every connection asks for liveness: the ones within the limit are answered, the others closed at once.
  await Promise.all(conns.map((c) => c.send(http('GET /health/live HTTP/1.1'))))
  await Promise.all(conns.map((c) => c.wait((x) => x.answers.length > 0)))
  const answered = conns.filter((c) => c.answers.length > 0).length
  const dropped = conns.filter((c) => c.closed && c.answers.length === 0).length
  t.ok(answered <= 24, `at most 24 answered (${answered})`)
  t.ok(dropped >= 16, `the rest closed without an answer (${dropped})`)
  t.equal(answered + dropped, 40, 'every connection either answered or closed')
  conns.forEach((c) => c.destroy())
  await new Promise((r) => setTimeout(r, 100))
  t.equal((await fetch(`${server.url}/health/live`)).status, 200, 'answered again once they closed')
})

t.test('a bracket bomb is refused before parsing, and liveness answers right after', async (t) => {
  const bomb = '['.repeat(2 * 1024 * 1024 - 64)
  const x = await rawRequest(server.url, postJson('/predict', bomb))
  shaped(t, x.answers[0], 400, 'MHE_JSON_TOO_DEEP', /deeper than the 3 levels/)
  const open = await rawRequest(server.url, postJson('/predict', `{"instances":${'['.repeat(100000)}`, []))
  shaped(t, open.answers[0], 400, 'MHE_JSON_TOO_DEEP')
  const live = await fetch(`${server.url}/health/live`, { signal: AbortSignal.timeout(20_000) })
  t.equal(live.status, 200, 'liveness answers')
})

t.test('Expect: 100-continue: 100 only once auth and length pass', async (t) => {
  const body = jsonBody({ instances: [good] })
  const ask = async (headers: string[]) => {
    const c = new RawConnection(server.url)
    await c.send(http('POST /predict HTTP/1.1', ['Expect: 100-continue', 'Content-Type: application/json', ...headers]))
    const first = await c.wait((x) => x.answers.length > 0)
    return { c, first: first.answers }
  }
  const noToken = await ask([`Content-Length: ${body.length}`])
  shaped(t, noToken.first[0], 401, 'MHE_UNAUTHORIZED')
  noToken.c.destroy()
  const tooLong = await ask([auth.trim(), 'Content-Length: 99999999'])
  shaped(t, tooLong.first[0], 413, 'MHE_BODY_TOO_LARGE')
  tooLong.c.destroy()
  const ok = await ask([auth.trim(), `Content-Length: ${body.length}`])
  t.equal(ok.first[0]?.status, 100, '100 Continue for a request that passed')
  await ok.c.send(body)
  const done = await ok.c.wait((x) => x.answers.some((a) => a.status >= 200))
  t.equal(done.answers.find((a) => a.status >= 200)?.status, 200, 'then the answer')
  ok.c.destroy()
})

t.test("malformed HTTP, smuggling shapes, huge headers and URLs: our error shape, then closed", async (t) => {
  const cases: [string, string, number, string][] = [
    ['garbage', 'HELLO WORLD\r\n\r\n', 400, 'MHE_BAD_HTTP'],
    ['Content-Length and Transfer-Encoding', http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/json', 'Content-Length: 4', 'Transfer-Encoding: chunked'], '0\r\n\r\n'), 400, 'MHE_BAD_HTTP'],
    ['two Content-Lengths', http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/json', 'Content-Length: 4', 'Content-Length: 5'], '{}{}'), 400, 'MHE_BAD_HTTP'],
    ['Transfer-Encoding not chunked last', http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/json', 'Transfer-Encoding: chunked, identity'], '0\r\n\r\n'), 400, 'MHE_BAD_HTTP'],
    ['a space before the colon', http('GET /health/live HTTP/1.1', ['Content-Length : 5']), 400, 'MHE_BAD_HTTP'],
    ['a bare LF in a header', `GET /health/live HTTP/1.1\r\nHost: ${host}\r\nX-A: b\nc\r\n\r\n`, 400, 'MHE_BAD_HTTP'],
    ['a 20 KiB header', http('GET /health/live HTTP/1.1', [`X-Big: ${'a'.repeat(20 * 1024)}`]), 431, 'MHE_HEADERS_TOO_LARGE'],
    ['a 20 KiB URL', http(`GET /health/live?${'a'.repeat(20 * 1024)} HTTP/1.1`), 431, 'MHE_HEADERS_TOO_LARGE'],
  ]
  for (const [name, text, status, code] of cases) {
    t.test(name, async (t) => {
      const x = await rawRequest(server.url, text)
      shaped(t, x.answers[0], status, code)
      t.ok(x.closed, 'closed')
    })
  }
})

t.test('routes: 405 + Allow, unknown query parameters, top_k twice, /docs/static 403', async (t) => {
  const get = await rawRequest(server.url, http('GET /predict HTTP/1.1', [auth.trim()]))
  shaped(t, get.answers[0], 405, 'MHE_METHOD_NOT_ALLOWED', /\/predict takes POST, not GET/)
  t.equal(get.answers[0]?.headers.allow, 'POST', 'Allow: POST')
  const put = await rawRequest(server.url, http('PUT /health/ready HTTP/1.1', ['Content-Length: 0']))
  shaped(t, put.answers[0], 405, 'MHE_METHOD_NOT_ALLOWED')
  t.equal(put.answers[0]?.headers.allow, 'GET, HEAD')
  const unknown = await rawRequest(server.url, postJson('/predict?topk=5', jsonBody({ instances: [good] })))
  shaped(t, unknown.answers[0], 400, 'MHE_BAD_REQUEST', /unknown query parameter "topk"/)
  const twice = await rawRequest(server.url, postJson('/predict?top_k=2', jsonBody({ instances: [good], top_k: 3 })))
  shaped(t, twice.answers[0], 400, 'MHE_BAD_REQUEST', /top_k is given in both the query and the body/)
  const proto = await rawRequest(server.url, postJson('/predict', `{"instances":[${JSON.stringify(good)}],"__proto__":{"admin":true}}`))
  shaped(t, proto.answers[0], 400, 'MHE_BAD_REQUEST', /unknown body field "__proto__"/)
  const docs = await rawRequest(server.url, http('GET /docs/static/%00 HTTP/1.1'))
  shaped(t, docs.answers[0], 403, 'MHE_FORBIDDEN')
  const traversal = await rawRequest(server.url, http('GET /docs/static/..%2f..%2fpackage.json HTTP/1.1'))
  shaped(t, traversal.answers[0], 404, 'MHE_NOT_FOUND')
})

t.test('bodies: invalid UTF-8, content-type tricks, wrong binary lengths, float32 overflow', async (t) => {
  const invalidUtf8 = Buffer.concat([Buffer.from('{"instances":[["'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"]]}')])
  const cases: [string, string | Buffer, number, string][] = [
    ['invalid UTF-8 in a string', Buffer.concat([Buffer.from(http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/json', `Content-Length: ${invalidUtf8.length}`])), invalidUtf8]), 400, 'MHE_BAD_REQUEST'],
    ['invalid UTF-8 outside strings', Buffer.concat([Buffer.from(http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/json', 'Content-Length: 3'])), Buffer.from([0xff, 0xfe, 0x7b])]), 400, 'MHE_MALFORMED_JSON'],
    ['text/plain', http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: text/plain', 'Content-Length: 2'], '{}'), 415, 'MHE_UNSUPPORTED_MEDIA_TYPE'],
    ['application/jsonx', http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: application/jsonx', 'Content-Length: 2'], '{}'), 415, 'MHE_UNSUPPORTED_MEDIA_TYPE'],
    ['no Content-Type', http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Length: 2'], '{}'), 415, 'MHE_UNSUPPORTED_MEDIA_TYPE'],
    ['multipart', http('POST /predict HTTP/1.1', [auth.trim(), 'Content-Type: multipart/form-data; boundary=x', 'Content-Length: 2'], '{}'), 415, 'MHE_UNSUPPORTED_MEDIA_TYPE'],
    ['JSON sent to /predict/binary', postJson('/predict/binary', jsonBody({ instances: [good] })), 415, 'MHE_UNSUPPORTED_MEDIA_TYPE'],
    ['float32 overflow', postJson('/predict', jsonBody({ instances: [[1e39, ...good.slice(1)]] })), 400, 'MHE_BAD_INSTANCE'],
  ]
  for (const n of [1, 3, 4 * d - 1, 4 * d + 1, 4 * d * 2 + 2]) {
    cases.push([`binary body of ${n} bytes`, Buffer.concat([Buffer.from(http('POST /predict/binary HTTP/1.1', [auth.trim(), 'Content-Type: application/octet-stream', `Content-Length: ${n}`])), Buffer.alloc(n, 0x3f)]), 400, 'MHE_BAD_BINARY_BODY'])
  }
  for (const [name, data, status, code] of cases) {
    const x = await rawRequest(server.url, data)
    t.test(name, async (t) => shaped(t, x.answers[0], status, code))
  }
})

t.test('request ids: a short plain one is echoed, anything else replaced', async (t) => {
  const ask = async (id: string) => (await rawRequest(server.url, http('GET /health/live HTTP/1.1', [`X-Request-Id: ${id}`]))).answers[0]?.headers['x-request-id']
  t.equal(await ask('trace-42.abc'), 'trace-42.abc')
  for (const bad of ['x'.repeat(8000), 'a b c', '<script>alert(1)</script>', '${jndi:ldap://x}']) {
    t.match(await ask(bad), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${JSON.stringify(bad.slice(0, 12))}: a fresh id`)
  }
})

t.test('a token in the query string or header never reaches the log', async (t) => {
  await rawRequest(server.url, http('GET /health/live?access_token=LEAKED-QUERY-1 HTTP/1.1'))
  await rawRequest(server.url, postJson(`/predict?token=LEAKED-QUERY-2`, jsonBody({ instances: [good] })))
  await rawRequest(server.url, http('GET /predictions?api_key=LEAKED-QUERY-3 HTTP/1.1'))
  await new Promise((r) => setTimeout(r, 200)) // the log lines to arrive
  t.match(server.output(), /query not logged/, 'requests with a query are logged, without it')
  t.notMatch(server.output(), /LEAKED-QUERY/, 'no query token in the log')
  t.notMatch(server.output(), new RegExp(TOKEN), 'no bearer token in the log')
})

t.test('peak RSS stays within the budget the settings give, under bombs and max-size requests', async (t) => {
  // 1,024 instances would pass 2 MiB: the largest JSON request under the limit, every number 6 decimals.
  const rows = Math.floor((2 * 1024 * 1024) / (jsonBody(good).length + 1)) - 1
  const big = jsonBody({ instances: Array.from({ length: rows }, () => good) })
  t.ok(big.length <= 2 * 1024 * 1024 && big.length > 1.9 * 1024 * 1024, `a max-size body (${big.length} bytes)`)
  const bomb = '['.repeat(2 * 1024 * 1024 - 64)
  const statuses = new Map<string, number>()
  const one = async (body: string, kind: string) => {
    let key: string
    try {
      const res = await fetch(`${memoryServer.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
        body,
        signal: AbortSignal.timeout(60_000),
      })
      const json = (await res.json()) as { code?: string }
      key = `${kind} ${res.status}${json.code ? ` ${json.code}` : ''}`
    } catch (err) {
      key = `${kind} failed: ${String((err as { cause?: unknown }).cause ?? err)}`
    }
    statuses.set(key, (statuses.get(key) ?? 0) + 1)
  }
  // One of each alone first: in the crowd below admission may refuse every bomb (or every max) before its body is read.
  await one(big, 'max')
  await one(bomb, 'bomb')
  // 20 at once: within MHE_MAX_CONNECTIONS (24), far past MHE_MAX_INFLIGHT_BYTES (8 MiB, 4 bodies).
  for (let round = 0; round < 3; round++) await Promise.all([...Array.from({ length: 14 }, () => one(big, 'max')), ...Array.from({ length: 6 }, () => one(bomb, 'bomb'))])
  t.comment(JSON.stringify(Object.fromEntries(statuses)))
  t.ok(statuses.get('max 200'), 'max-size requests are answered')
  t.ok(statuses.get('bomb 400 MHE_JSON_TOO_DEEP'), 'bombs are refused as too deep')
  // 503s: bodies past MHE_MAX_INFLIGHT_BYTES (OVERLOADED), or past the queue room their Content-Length asks for
  // (QUEUE_FULL, refused before the body: README "Overload").
  const expected = ['max 200', 'bomb 400 MHE_JSON_TOO_DEEP', ...['max', 'bomb'].flatMap((k) => [`${k} 503 MHE_OVERLOADED`, `${k} 503 MHE_QUEUE_FULL`])]
  // A body refused before it was read may find the connection closed while still uploading (seen on a machine at
  // load 15-23): a client-side EPIPE or reset is the early refusal, not a server fault (the report of issue 17 lists
  // it as open). Any other answer is.
  const other = [...statuses.keys()].filter((k) => !expected.includes(k) && !/^(bomb|max) failed: .*(EPIPE|ECONNRESET|other side closed)/.test(k))
  t.same(other, [], 'nothing else: 503 only for bodies past the in-flight bytes or the queue')

  const status = await readFile(`/proc/${memoryServer.child.pid}/status`, 'utf8')
  const peak = Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024
  const files = await readdir(bundle.dir)
  let weightBytes = 0
  for (const f of files.filter((f) => f.endsWith('.bin'))) weightBytes += (await stat(join(bundle.dir, f))).size
  const budget = memoryBudgetBytes(loadConfig(memoryEnv), { weightBytes, featureDim: d })
  t.comment(`peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB, budget ${(budget / 2 ** 20).toFixed(0)} MiB`)
  t.ok(peak <= budget, `peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB within the budget of ${(budget / 2 ** 20).toFixed(0)} MiB`)
  t.equal((await fetch(`${memoryServer.url}/health/ready`)).status, 200, 'ready afterwards')
})
