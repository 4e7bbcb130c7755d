// The JSON thread's heap is bounded (src/http/json-thread.ts): a body whose parse would not fit is refused on its
// bytes with 413 naming the limit, one that still exhausts the heap kills the thread and fails alone, and the next
// body is parsed by a new thread. A real worker thread.
import t from 'tap'
import { JsonThread } from '../../src/http/json-thread.js'
import { ServiceError } from '../../src/errors.js'
import { parsedHeapBytes } from '../../src/http/json-depth.js'

const MIB = 1024 * 1024
// The thread does not keep a process alive (a server's socket does): this test's timer does.
const alive = setInterval(() => {}, 1000)
t.teardown(() => clearInterval(alive))
const good = () => Buffer.from(JSON.stringify({ instances: [[1, 2, 3], [4, 5, 6]], top_k: 2 }))
/**
 * Valid JSON of the request's depth whose parse takes ~10x its size: a million empty objects. (Not arrays: a body of
 * the usual shape is read without JSON.parse, src/http/scan-instances.ts, and needs no budget.)
 */
const objects = (n: number) => Buffer.from(`{"instances":[${'{},'.repeat(n - 1)}{}]}`)

t.test('the estimate: the densest numbers at 6 bytes per byte, empty objects far more', async (t) => {
  const zeros = Buffer.from(`[${'0,'.repeat(99_999)}0]`)
  t.ok(parsedHeapBytes(zeros) <= 6 * zeros.length + 64, `zeros: ${parsedHeapBytes(zeros)} for ${zeros.length} bytes`)
  const empty = objects(100_000)
  t.ok(parsedHeapBytes(empty) > 20 * empty.length, `empty objects: ${parsedHeapBytes(empty)} for ${empty.length} bytes`)
  t.equal(parsedHeapBytes(Buffer.from('["[[[,,,"]')), 2 * 10 + 8 + 64 + 32, 'brackets and commas inside strings do not count')
})

t.test('a body estimated past the budget is refused unparsed; the thread goes on', async (t) => {
  const thread = new JsonThread(64 * MIB, 1 * MIB)
  t.teardown(() => thread.close())
  t.strictSame(await thread.parse(objects(100_000), 3), { tooBig: true })
  const r = await thread.parse(good(), 3)
  t.ok('instances' in r && r.instances.length === 2, 'the next body is parsed')
})

t.test('a body that exhausts the heap fails alone with 413 naming the limit; the next one gets a new thread', async (t) => {
  // No estimate (an unbounded budget): the parse itself runs out of the 16 MB heap.
  const thread = new JsonThread(16 * MIB, Infinity)
  t.teardown(() => thread.close())
  const [bomb, after] = await Promise.allSettled([thread.parse(objects(2_000_000), 3), thread.parse(good(), 3)])
  t.equal(bomb.status, 'rejected')
  const err = (bomb as PromiseRejectedResult).reason as ServiceError
  t.ok(err instanceof ServiceError, 'a ServiceError')
  t.equal(err.code, 'MHE_JSON_TOO_BIG')
  t.equal(err.statusCode, 413)
  t.match(err.message, /more than the 16 MB the JSON parser may use/)
  t.equal(after.status, 'fulfilled', 'the body queued behind it is parsed by a new thread')
  t.ok(after.status === 'fulfilled' && 'instances' in after.value && after.value.instances.length === 2)
})
