// The service lifecycle: states move only forward, so a late event never undoes a later state.
import t from 'tap'
import { Lifecycle, SERVICE_STATES } from '../../src/serving/lifecycle.js'

t.test('a new service is starting: alive, not ready', async (t) => {
  const l = new Lifecycle()
  t.equal(l.state, 'starting')
  t.equal(l.alive, true)
  t.equal(l.ready, false)
})

t.test('the usual life: starting -> ready -> draining -> closing', async (t) => {
  const l = new Lifecycle()
  t.equal(l.to('ready'), true)
  t.equal(l.ready, true)
  t.equal(l.to('draining'), true)
  t.equal(l.ready, false, 'draining is not ready')
  t.equal(l.alive, true, 'but alive')
  t.equal(l.to('closing'), true)
  t.equal(l.state, 'closing')
})

t.test('never backwards: closing stays closing, a model loaded during a drain does not make it ready', async (t) => {
  const closing = new Lifecycle()
  closing.to('closing')
  t.equal(closing.to('draining'), false, 'close() after a drain does not move closing back to draining')
  t.equal(closing.state, 'closing')

  const drained = new Lifecycle()
  drained.to('draining')
  t.equal(drained.to('ready'), false)
  t.equal(drained.state, 'draining')

  const same = new Lifecycle()
  same.to('ready')
  t.equal(same.to('ready'), false, 'a move to the same state is not a move')
})

t.test('failed is final and reachable from every other state', async (t) => {
  for (const from of SERVICE_STATES.filter((s) => s !== 'failed')) {
    const l = new Lifecycle()
    if (from !== 'starting') l.to(from)
    t.equal(l.to('failed'), true, `${from} -> failed`)
    t.equal(l.alive, false)
    for (const s of SERVICE_STATES) t.equal(l.to(s), false, `failed -> ${s} refused`)
  }
})
