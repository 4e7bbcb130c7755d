// The batcher's one deadline timer: armed for the earliest deadline, unref'd (left armed past the last request, it
// must not hold a process open), and re-armed for the next deadline when it fires.
import t from 'tap'
import { Deadlines } from '../../src/serving/batch-deadlines.js'
import { ManualClock } from '../helpers/manual-clock.js'

t.test('the timer is unref\'d where the clock gives timers that can be', async (t) => {
  const unrefs: number[] = []
  const clock = new ManualClock()
  const handles = {
    now: () => clock.now(),
    setTimeout: (fn: () => void, ms: number) => {
      const id = clock.setTimeout(fn, ms) as number
      return { id, unref: () => unrefs.push(id) }
    },
    clearTimeout: (h: unknown) => clock.clearTimeout((h as { id: number }).id),
  }
  const expired: number[] = []
  const d = new Deadlines<{ deadline: number; n: number }>(handles, (w) => expired.push(w.n))
  d.watch({ deadline: 50, n: 1 })
  d.watch({ deadline: 20, n: 2 }) // earlier: the timer moves
  t.equal(unrefs.length, 2, 'each arming unref\'d')
  t.equal(clock.pending, 1, 'one timer')
  clock.advance(20)
  t.same(expired, [2])
  clock.advance(30)
  t.same(expired, [2, 1])
  t.equal(clock.pending, 0, 'nothing left: not re-armed')
})
