// Dynamic batcher: batching by size and delay, splitting, bounded queue, exactly-once settlement,
// cancellation, deadlines, close/drain and hooks, all on a ManualClock (test/helpers: no real time).
import t from 'tap'
import fc from 'fast-check'
import {
  Batcher,
  BatcherClosedError,
  BatchFailedError,
  CancelledError,
  DeadlineExceededError,
  QueueFullError,
  type BatcherHooks,
} from '../../src/serving/batcher.js'
import { ManualClock } from '../helpers/manual-clock.js'

/** Lets promise continuations run (no time passes on the ManualClock). */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

interface Tracked<T> {
  state: 'pending' | 'fulfilled' | 'rejected'
  value?: T
  error?: unknown
  settles: number
}

function track<T>(p: Promise<T>): Tracked<T> {
  const s: Tracked<T> = { state: 'pending', settles: 0 }
  p.then(
    (value) => {
      s.settles++
      s.state = 'fulfilled'
      s.value = value
    },
    (error: unknown) => {
      s.settles++
      s.state = 'rejected'
      s.error = error
    },
  )
  return s
}

/** A run function whose batches the test finishes by hand. */
class FakeEngine<I> {
  calls: I[][] = []
  private pending: { items: I[]; resolve: (o: string[]) => void; reject: (e: unknown) => void }[] = []
  concurrent = 0
  maxConcurrent = 0

  run = (items: I[]): Promise<string[]> => {
    this.calls.push([...items])
    this.concurrent++
    this.maxConcurrent = Math.max(this.maxConcurrent, this.concurrent)
    return new Promise((resolve, reject) => this.pending.push({ items, resolve, reject }))
  }

  get open(): number {
    return this.pending.length
  }

  /** Finishes the oldest running batch with out(items), or rejects it. */
  finish(out: (items: I[]) => string[] = (items) => items.map((x) => `out:${String(x)}`)): void {
    const p = this.pending.shift()
    if (!p) throw new Error('no batch is running')
    this.concurrent--
    p.resolve(out(p.items))
  }

  fail(err: unknown): void {
    const p = this.pending.shift()
    if (!p) throw new Error('no batch is running')
    this.concurrent--
    p.reject(err)
  }
}

function setup(opts: { maxBatch: number; maxDelayMs: number; maxQueue: number }, hooks?: BatcherHooks) {
  const clock = new ManualClock()
  const engine = new FakeEngine<number>()
  const batcher = new Batcher<number, string>(engine.run, { ...opts, clock, hooks })
  return { clock, engine, batcher }
}

t.test('batches by size: a full batch runs at once, without the delay', async (t) => {
  const { engine, batcher } = setup({ maxBatch: 3, maxDelayMs: 1000, maxQueue: 100 })
  const a = track(batcher.submit([1]))
  const b = track(batcher.submit([2, 3]))
  t.same(engine.calls, [[1, 2, 3]])
  t.equal(batcher.depth, 0)
  t.equal(batcher.running, 1)
  engine.finish()
  await flush()
  t.same(a.value, ['out:1'])
  t.same(b.value, ['out:2', 'out:3'])
  t.equal(batcher.running, 0)
})

t.test('batches by delay: the timer starts at the first item of the batch', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 10, maxDelayMs: 50, maxQueue: 100 })
  const a = track(batcher.submit([1]))
  clock.advance(30)
  const b = track(batcher.submit([2]))
  clock.advance(19)
  t.same(engine.calls, [], 'not yet: 49 ms after the first item')
  t.equal(batcher.depth, 2)
  clock.advance(1)
  t.same(engine.calls, [[1, 2]], 'at 50 ms after the first item, not after the last')
  engine.finish()
  await flush()
  t.same([a.value, b.value], [['out:1'], ['out:2']])

  // The next batch's timer starts at its own first item.
  clock.advance(500)
  batcher.submit([3])
  clock.advance(49)
  t.equal(engine.calls.length, 1)
  clock.advance(1)
  t.same(engine.calls[1], [3])
})

t.test('maxDelayMs 0 runs on the next event-loop turn, with everything submitted before it', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 10, maxDelayMs: 0, maxQueue: 100 })
  const a = track(batcher.submit([7]))
  const b = track(batcher.submit([8]))
  t.same(engine.calls, [], 'not inside submit')
  clock.advance(0)
  t.same(engine.calls, [[7, 8]], 'one batch for both')
  engine.finish()
  await flush()
  t.same(a.value, ['out:7'])
  t.same(b.value, ['out:8'])
})

t.test('reserve: room held before a body is read counts against the queue; the holder is queued even past it', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 10, maxDelayMs: 100, maxQueue: 5 })
  t.ok(batcher.reserve(3), 'room for 3 of 5')
  t.notOk(batcher.reserve(3), 'no room for 3 more')
  t.equal(batcher.reserved, 3)
  const other = track(batcher.submit([1, 2, 3]))
  await Promise.resolve()
  t.type(other.error, QueueFullError, 'an unreserved request cannot take the held room')
  const small = track(batcher.submit([1, 2]))
  t.equal(batcher.depth, 2, 'what is left of the queue is still open')
  // The holder's body had 4 instances, not 3: it is queued anyway (admitted requests do not starve).
  const held = track(batcher.submit([4, 5, 6, 7], { reserved: 3 }))
  t.equal(batcher.reserved, 0, 'submit releases the room')
  t.equal(batcher.depth, 6)
  clock.advance(100)
  t.same(engine.calls, [[1, 2, 4, 5, 6, 7]])
  engine.finish()
  await flush()
  t.same(held.value, ['out:4', 'out:5', 'out:6', 'out:7'])
  t.ok(batcher.reserve(1))
  await t.rejects(batcher.submit([1, 2, 3, 4, 5, 6], { reserved: 1 }), QueueFullError, 'admitted or not, a request larger than the queue never fits')
  t.equal(batcher.reserved, 0)
  t.equal(small.state, 'fulfilled')
  t.ok(batcher.reserve(5))
  batcher.release(5)
  batcher.release(5)
  t.equal(batcher.reserved, 0, 'release never goes below zero')
  batcher.close()
  t.notOk(batcher.reserve(1), 'a closed batcher holds no room')
})

t.test('one batch at a time; the next fills while one runs and starts when it ends', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 2, maxDelayMs: 10, maxQueue: 100 })
  batcher.submit([1, 2])
  batcher.submit([3])
  clock.advance(100) // the delay of [3] passes while [1,2] runs
  t.equal(engine.calls.length, 1)
  t.equal(batcher.depth, 1)
  t.equal(batcher.running, 1)
  engine.finish()
  await flush()
  t.equal(engine.calls.length, 1, 'the waiting item is overdue but waits one turn for company')
  clock.advance(0)
  t.same(engine.calls, [[1, 2], [3]], 'the waiting item ran as soon as the engine was free')
  batcher.submit([4])
  t.equal(engine.calls.length, 2, 'the engine is busy: [4] waits')
  engine.finish()
  await flush()
  t.equal(engine.calls.length, 2, '[4] has not waited its delay yet')
  clock.advance(10)
  t.same(engine.calls[2], [4])
  engine.finish()
  await flush()
  t.equal(engine.maxConcurrent, 1)
})

t.test('a request larger than maxBatch is split, outputs stay in order', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 4, maxDelayMs: 5, maxQueue: 100 })
  const big = Array.from({ length: 10 }, (_, i) => i)
  const a = track(batcher.submit(big))
  const b = track(batcher.submit([100, 101, 102]))
  t.equal(batcher.depth, 9, 'the first part runs at once')
  while (engine.open > 0) {
    engine.finish()
    await flush()
  }
  t.equal(engine.calls.length, 3, 'the last part, [102], waits for its delay: its batch is not full')
  clock.advance(5)
  engine.finish()
  await flush()
  t.same(engine.calls, [
    [0, 1, 2, 3],
    [4, 5, 6, 7],
    [8, 9, 100, 101],
    [102],
  ])
  t.same(a.value, big.map((x) => `out:${x}`))
  t.same(b.value, ['out:100', 'out:101', 'out:102'])
  t.equal(a.settles + b.settles, 2)
})

t.test('a full queue rejects at once and queues nothing', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 10, maxDelayMs: 100, maxQueue: 5 })
  const a = track(batcher.submit([1, 2, 3]))
  const full = track(batcher.submit([4, 5, 6]))
  const never = track(batcher.submit(Array.from({ length: 6 }, (_, i) => i)))
  await Promise.resolve()
  await Promise.resolve()
  t.equal(full.state, 'rejected', 'rejected within microtasks, with no time passing')
  t.type(full.error, QueueFullError)
  t.match((full.error as Error).message, /holds 3 of at most 5/)
  t.type(never.error, QueueFullError)
  t.match((never.error as Error).message, /can never fit/)
  t.equal(batcher.depth, 3)
  const fits = track(batcher.submit([7, 8]))
  t.equal(batcher.depth, 5)
  clock.advance(100)
  t.same(engine.calls, [[1, 2, 3, 7, 8]], 'the refused items never reach run')
  engine.finish()
  await flush()
  t.equal(a.state, 'fulfilled')
  t.equal(fits.state, 'fulfilled')
})

t.test('an empty request resolves [] at once', async (t) => {
  const { engine, batcher } = setup({ maxBatch: 2, maxDelayMs: 10, maxQueue: 2 })
  t.same(await batcher.submit([]), [])
  t.same(engine.calls, [])
  t.equal(batcher.depth, 0)
})

for (const [name, misbehave, pattern] of [
  ['throws synchronously', 'sync', /failed/],
  ['rejects', 'reject', /failed/],
  ['returns too few outputs', 'short', /returned 1 outputs for 3 inputs/],
  ['returns too many outputs', 'long', /returned 4 outputs for 3 inputs/],
  ['returns a non-array', 'null', /returned a null for 3 inputs/],
] as const) {
  t.test(`every request is settled once when run ${name}, and the batcher recovers`, async (t) => {
    const clock = new ManualClock()
    const batches: number[][] = []
    let mode: string = misbehave
    const boom = new Error('engine exploded')
    const run = (items: number[]): Promise<number[]> => {
      batches.push([...items])
      if (mode === 'sync') throw boom
      if (mode === 'reject') return Promise.reject(boom)
      if (mode === 'short') return Promise.resolve([1])
      if (mode === 'long') return Promise.resolve([1, 2, 3, 4])
      if (mode === 'null') return Promise.resolve(null as unknown as number[])
      return Promise.resolve(items.map((x) => x * 2))
    }
    const errors: unknown[] = []
    const batcher = new Batcher(run, {
      maxBatch: 3,
      maxDelayMs: 10,
      maxQueue: 100,
      clock,
      hooks: { onBatch: (info) => errors.push(info.error) },
    })
    const a = track(batcher.submit([1]))
    const b = track(batcher.submit([2, 3, 4, 5])) // split: its second part is still queued when the first fails
    const c = track(batcher.submit([6]))
    await flush()
    t.same(batches, [[1, 2, 3]])
    for (const s of [a, b]) {
      t.equal(s.state, 'rejected')
      t.type(s.error, BatchFailedError)
      t.match((s.error as Error).message, pattern)
    }
    if (misbehave === 'sync' || misbehave === 'reject') t.equal((a.error as Error).cause, boom, 'cause kept')
    t.equal(batcher.depth, 1, "b's queued part was dropped; c waits")
    t.equal(batcher.running, 0)
    mode = 'ok'
    clock.advance(10)
    await flush()
    t.same(batches[1], [6], "b's remaining part never ran")
    t.same(c.value, [12])
    const d = batcher.submit([21])
    clock.advance(10)
    t.same(await d, [42])
    t.equal(a.settles + b.settles + c.settles, 3)
    t.equal(errors.length, 3)
    t.type(errors[0], BatchFailedError)
    t.equal(errors[1], undefined)
  })
}

t.test('an aborted signal drops the request before its batch; it never reaches run', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 10, maxDelayMs: 20, maxQueue: 100 })
  const ac = new AbortController()
  const a = track(batcher.submit([1, 2], { signal: ac.signal }))
  const b = track(batcher.submit([3]))
  t.equal(batcher.depth, 3)
  ac.abort()
  await flush()
  t.equal(a.state, 'rejected', 'rejected when the client left, without waiting for the batch')
  t.type(a.error, CancelledError)
  t.equal(batcher.depth, 1)
  clock.advance(19)
  t.same(engine.calls, [], "the delay counts from b's first item now (queued at 0 too)")
  clock.advance(1)
  t.same(engine.calls, [[3]])
  engine.finish()
  await flush()
  t.same(b.value, ['out:3'])

  const dead = new AbortController()
  dead.abort()
  const c = track(batcher.submit([9], { signal: dead.signal }))
  await flush()
  t.type(c.error, CancelledError, 'an already aborted signal is refused at once')
  t.equal(a.settles + c.settles, 2)
})

t.test('a request aborted while its part runs rejects once and its queued parts are dropped', async (t) => {
  const { engine, batcher } = setup({ maxBatch: 2, maxDelayMs: 0, maxQueue: 100 })
  const ac = new AbortController()
  const a = track(batcher.submit([1, 2, 3, 4], { signal: ac.signal }))
  t.equal(batcher.depth, 2)
  ac.abort()
  await flush()
  t.type(a.error, CancelledError)
  t.equal(batcher.depth, 0)
  engine.finish()
  await flush()
  t.same(engine.calls, [[1, 2]])
  t.equal(a.settles, 1)
  await batcher.drain()
})

t.test('a deadline passed while queued rejects at the deadline and never runs', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 2, maxDelayMs: 100, maxQueue: 100 })
  batcher.submit([1, 2]) // keeps the engine busy
  const late = track(batcher.submit([3], { deadline: 30 }))
  const ok = track(batcher.submit([4], { deadline: 1000 }))
  clock.advance(29)
  await flush()
  t.equal(late.state, 'pending')
  clock.advance(1)
  await flush()
  t.type(late.error, DeadlineExceededError, 'rejected at its deadline although the engine is still busy')
  t.equal(batcher.depth, 1)
  engine.finish()
  await flush()
  clock.advance(100)
  await flush()
  t.same(engine.calls, [[1, 2], [4]], 'the expired item never reached run')
  engine.finish()
  await flush()
  t.same(ok.value, ['out:4'])
  // One timer for all deadlines, left armed when requests settle first: it fires once, finds no one, and stops.
  t.ok(clock.pending <= 1, 'at most the one deadline timer is armed')
  clock.advance(1000)
  t.equal(clock.pending, 0, 'the settled requests left no deadline timer behind')

  const past = track(batcher.submit([5], { deadline: clock.now() }))
  await flush()
  t.type(past.error, DeadlineExceededError, 'a deadline already passed is refused at once')
})

t.test('a deadline due at the same instant as the batch timer is not run', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 10, maxDelayMs: 10, maxQueue: 100 })
  const a = track(batcher.submit([1])) // arms the batch timer for t=10 first
  const b = track(batcher.submit([2], { deadline: 10 })) // its deadline timer, also t=10, fires second
  clock.advance(10)
  t.same(engine.calls, [[1]], 'the batch that starts at the deadline leaves b out')
  engine.finish()
  await flush()
  t.same(a.value, ['out:1'])
  t.type(b.error, DeadlineExceededError)
  t.equal(b.settles, 1)
})

t.test('a deadline that passes while the request runs still rejects on time', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 2, maxDelayMs: 0, maxQueue: 100 })
  const a = track(batcher.submit([1], { deadline: 50 }))
  clock.advance(0)
  t.equal(batcher.running, 1)
  clock.advance(50)
  await flush()
  t.type(a.error, DeadlineExceededError)
  engine.finish() // late result is discarded
  await flush()
  t.equal(a.settles, 1)
  t.equal(a.state, 'rejected')
})

t.test('deadlines in any order share one timer, each rejecting at its own time; close leaves no timer', async (t) => {
  const { clock, engine, batcher } = setup({ maxBatch: 1, maxDelayMs: 0, maxQueue: 100 })
  batcher.submit([0]) // keeps the engine busy: the others stay queued
  clock.advance(0)
  const deadlines = [50, 20, 80, 20, 35, 1000]
  const requests = deadlines.map((deadline, i) => track(batcher.submit([i + 1], { deadline })))
  t.equal(clock.pending, 1, 'one timer for all of them')
  for (const at of [19, 20, 34, 35, 49, 50, 79, 80]) {
    clock.advance(at - clock.now())
    await flush()
    const rejected = requests.filter((r) => r.state === 'rejected').length
    t.equal(rejected, deadlines.filter((d) => d <= at).length, `at t=${at}, exactly the requests past their deadline are rejected`)
  }
  for (const r of requests.slice(0, 5)) t.type(r.error, DeadlineExceededError)
  t.equal(requests[5]!.state, 'pending')
  t.equal(clock.pending, 1, 'armed for the one left')
  batcher.close()
  t.equal(clock.pending, 1, 'closed with a request left: its deadline still holds')
  for (let i = 0; i < 2; i++) {
    engine.finish()
    await flush()
  }
  t.same(requests[5]!.value, ['out:6'])
  t.equal(clock.pending, 0, 'closed and nothing left: no timer')
})

t.test('close() refuses new work, runs what is queued at once, drain() waits for it', async (t) => {
  const { engine, batcher } = setup({ maxBatch: 2, maxDelayMs: 1000, maxQueue: 100 })
  await batcher.drain() // idle: resolves at once
  const a = track(batcher.submit([1, 2, 3]))
  let drained = false
  void batcher.drain().then(() => {
    drained = true
  })
  batcher.close()
  const refused = track(batcher.submit([4]))
  await flush()
  t.type(refused.error, BatcherClosedError)
  t.same(engine.calls, [[1, 2]])
  engine.finish()
  await flush()
  t.same(engine.calls, [[1, 2], [3]], 'queued work runs without waiting for the delay once closed')
  t.notOk(drained, 'drain waits for the running batch')
  engine.finish()
  await flush()
  t.ok(drained)
  t.same(a.value, ['out:1', 'out:2', 'out:3'])
  t.equal(batcher.depth, 0)
  t.equal(batcher.running, 0)
})

t.test('hooks report batch size, per-item queue wait, compute time and errors', async (t) => {
  const batches: { size: number; waitMs: number[]; computeMs: number; error?: unknown }[] = []
  const { clock, engine, batcher } = setup(
    { maxBatch: 3, maxDelayMs: 40, maxQueue: 100 },
    { onBatch: (info) => batches.push(info) },
  )
  batcher.submit([1])
  clock.advance(15)
  batcher.submit([2, 3])
  clock.advance(25)
  engine.finish()
  await flush()
  t.same(batches, [{ size: 3, waitMs: [15, 0, 0], computeMs: 25 }])
  void batcher.submit([4]).catch(() => {})
  clock.advance(40)
  clock.advance(7)
  engine.fail(new Error('x'))
  await flush()
  t.equal(batches[1]?.size, 1)
  t.same(batches[1]?.waitMs, [40])
  t.equal(batches[1]?.computeMs, 7)
  t.type(batches[1]?.error, BatchFailedError)
})

t.test('a throwing hook does not break settlement', async (t) => {
  const clock = new ManualClock()
  const batcher = new Batcher((xs: number[]) => Promise.resolve(xs), {
    maxBatch: 1,
    maxDelayMs: 0,
    maxQueue: 1,
    clock,
    hooks: {
      onBatch: () => {
        throw new Error('metrics bug')
      },
    },
  })
  t.same(await batcher.submit([5]), [5])
  batcher.close()
  await t.rejects(batcher.submit([6]), BatcherClosedError)
})

t.test('constructor rejects nonsense options', async (t) => {
  const run = (xs: number[]) => Promise.resolve(xs)
  t.throws(() => new Batcher(run, { maxBatch: 0, maxDelayMs: 0, maxQueue: 1 }), RangeError)
  t.throws(() => new Batcher(run, { maxBatch: 1.5, maxDelayMs: 0, maxQueue: 1 }), RangeError)
  t.throws(() => new Batcher(run, { maxBatch: 1, maxDelayMs: -1, maxQueue: 1 }), RangeError)
  t.throws(() => new Batcher(run, { maxBatch: 1, maxDelayMs: NaN, maxQueue: 1 }), RangeError)
  t.throws(() => new Batcher(run, { maxBatch: 1, maxDelayMs: 0, maxQueue: 0 }), RangeError)
})

// Random workloads: submits of random sizes (some with signals that get aborted, some with deadlines),
// time moving in random steps, and a run function that randomly throws, rejects or miscounts.
type Op =
  | { kind: 'submit'; size: number; abortable: boolean; deadlineIn: number | null }
  | { kind: 'advance'; ms: number }
  | { kind: 'abort'; pick: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('submit' as const),
    size: fc.integer({ min: 0, max: 12 }),
    abortable: fc.boolean(),
    deadlineIn: fc.option(fc.integer({ min: 0, max: 60 })),
  }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }),
  fc.record({ kind: fc.constant('abort' as const), pick: fc.nat() }),
)

t.test('property: every request settles once, outputs match inputs, limits hold', async (t) => {
  const details = await fc.check(
    fc.asyncProperty(
      fc.record({
        maxBatch: fc.integer({ min: 1, max: 6 }),
        maxDelayMs: fc.integer({ min: 0, max: 20 }),
        maxQueue: fc.integer({ min: 1, max: 20 }),
      }),
      fc.array(opArb, { maxLength: 40 }),
      fc.array(fc.constantFrom('ok', 'ok', 'ok', 'throw', 'reject', 'short', 'long'), { minLength: 1, maxLength: 10 }),
      fc.array(fc.integer({ min: 0, max: 15 }), { minLength: 1, maxLength: 10 }),
      async (opts, ops, faults, computeTimes) => {
        const clock = new ManualClock()
        const f = (x: number) => x * 3 + 1
        const ownerOf = new Map<number, number>() // item -> request index
        const gone = new Set<number>() // requests aborted or past their deadline
        const deadlines: (number | undefined)[] = []
        let nBatches = 0
        let concurrent = 0
        let violation = ''
        const run = (items: number[]): Promise<number[]> => {
          const mode = faults[nBatches % faults.length]
          const ms = computeTimes[nBatches % computeTimes.length] ?? 0
          nBatches++
          if (items.length === 0 || items.length > opts.maxBatch) violation ||= `batch of ${items.length}`
          if (++concurrent > 1) violation ||= 'two batches at once'
          for (const x of items) {
            const r = ownerOf.get(x) ?? -1
            const dl = deadlines[r]
            if (gone.has(r) || (dl !== undefined && clock.now() >= dl)) violation ||= `item of dead request ${r} ran`
          }
          if (mode === 'throw') {
            concurrent--
            throw new Error('boom')
          }
          return new Promise((resolve, reject) => {
            clock.setTimeout(() => {
              concurrent--
              if (mode === 'reject') reject(new Error('boom'))
              else if (mode === 'short') resolve(items.slice(1).map(f))
              else if (mode === 'long') resolve([...items.map(f), 0])
              else resolve(items.map(f))
            }, ms)
          })
        }
        const batcher = new Batcher(run, { ...opts, clock })
        const requests: { inputs: number[]; tracked: Tracked<number[]>; ac?: AbortController }[] = []
        let nextItem = 0
        for (const op of ops) {
          if (op.kind === 'submit') {
            const inputs = Array.from({ length: op.size }, () => nextItem++)
            const r = requests.length
            for (const x of inputs) ownerOf.set(x, r)
            const ac = op.abortable ? new AbortController() : undefined
            const deadline = op.deadlineIn === null ? undefined : clock.now() + op.deadlineIn
            deadlines.push(deadline)
            requests.push({ inputs, ac, tracked: track(batcher.submit(inputs, { signal: ac?.signal, deadline })) })
          } else if (op.kind === 'advance') {
            clock.advance(op.ms)
          } else {
            const abortable = requests
              .map((r, i) => [r, i] as const)
              .filter(([r]) => r.ac && !r.ac.signal.aborted && r.tracked.state === 'pending')
            const hit = abortable[op.pick % Math.max(1, abortable.length)]
            if (hit) {
              gone.add(hit[1])
              hit[0].ac?.abort()
            }
          }
          if (batcher.depth > opts.maxQueue) violation ||= `depth ${batcher.depth} > maxQueue`
          if (batcher.running > 1) violation ||= `running ${batcher.running}`
          await flush()
        }
        batcher.close()
        let drained = false
        void batcher.drain().then(() => {
          drained = true
        })
        for (let i = 0; i < 1000 && !drained; i++) {
          clock.advance(5)
          await flush()
        }
        if (violation) throw new Error(violation)
        if (!drained) throw new Error('drain never resolved')
        if (batcher.depth !== 0 || batcher.running !== 0) throw new Error('not idle after drain')
        for (const [i, { inputs, tracked }] of requests.entries()) {
          if (tracked.settles !== 1) throw new Error(`request ${i} settled ${tracked.settles} times`)
          if (tracked.state === 'fulfilled') {
            if (gone.has(i) && inputs.length > 0) throw new Error(`aborted request ${i} resolved`)
            const want = inputs.map(f)
            if (JSON.stringify(tracked.value) !== JSON.stringify(want)) throw new Error(`request ${i} got wrong outputs`)
          } else {
            const e = tracked.error
            const known = [CancelledError, DeadlineExceededError, QueueFullError, BatcherClosedError, BatchFailedError]
            if (!known.some((type) => e instanceof type)) throw new Error(`request ${i} rejected with ${String(e)}`)
          }
        }
      },
    ),
    { numRuns: 300 },
  )
  t.notOk(details.failed, `300 random workloads: every waiter settled exactly once${details.failed ? `\n${fc.defaultReportMessage(details) ?? ''}` : ''}`)
})

t.test('onRoom: told when held room is given back, when a batch takes instances off the queue, and on close', async (t) => {
  const { engine, batcher } = setup({ maxBatch: 2, maxDelayMs: 0, maxQueue: 4 })
  let told = 0
  batcher.onRoom(() => told++)
  t.ok(batcher.reserve(2))
  batcher.release(2)
  t.equal(told, 1, 'held room given back')
  track(batcher.submit([1, 2]))
  t.equal(engine.calls.length, 1)
  t.equal(told, 2, 'a batch took its instances off the queue')
  t.equal(batcher.isClosed, false)
  batcher.close()
  t.equal(told, 3, 'closed')
  t.equal(batcher.isClosed, true)
  engine.finish()
  await flush()
})
