// Combining the workers' outcomes of a relayed control request into one answer (src/http/repository-control.ts).
import t from 'tap'
import { combineOutcomes, type ControlOutcome, type IndexEntry } from '../../src/http/repository-control.js'

const ok = (body: IndexEntry[] | { name: string; loaded: string[]; unloaded: string[] }): ControlOutcome => ({ ok: true, body })
const index = { op: 'index', ready: false } as const
const load = { op: 'load', name: 'a' } as const

t.test('load: the answer when every worker succeeded, else the first failure naming its worker', async (t) => {
  const answer = { name: 'a', loaded: ['2'], unloaded: ['1'] }
  t.same(combineOutcomes(load, [{ pid: 11, outcome: ok(answer) }, { pid: 12, outcome: ok(answer) }]), { ok: true, body: answer })
  const failed: ControlOutcome = { ok: false, code: 'MHE_MODEL_LOAD_FAILED', message: 'model "a" failed to load (x)' }
  t.same(combineOutcomes(load, [{ pid: 11, outcome: ok(answer) }, { pid: 12, outcome: failed }]), {
    ok: false,
    code: 'MHE_MODEL_LOAD_FAILED',
    message: 'worker 12 (of 2): model "a" failed to load (x)',
  })
  const gone = combineOutcomes(load, [{ pid: 11, outcome: ok(answer) }, { pid: 12 }])
  t.match(gone, { ok: false, code: 'MHE_INTERNAL', message: /^worker 12 \(of 2\) exited or failed before it answered/ })
  t.match(combineOutcomes(load, []), { ok: false, code: 'MHE_INTERNAL' })
})

t.test('index: entries the workers agree on as they are; where they differ, the least ready with every worker\'s state', async (t) => {
  const ready = (v: string): IndexEntry => ({ name: 'a', version: v, state: 'READY', reason: '' })
  const one = [ready('1'), ready('2'), { name: 'b', state: 'UNAVAILABLE', reason: 'unloaded' } satisfies IndexEntry]
  const other = [ready('1'), { name: 'a', version: '2', state: 'LOADING', reason: '' } satisfies IndexEntry, { name: 'b', state: 'UNAVAILABLE', reason: 'unloaded' } satisfies IndexEntry, ready('3')]
  const combined = combineOutcomes(index, [{ pid: 1, outcome: ok(one) }, { pid: 2, outcome: ok(other) }])
  t.same(combined, {
    ok: true,
    body: [
      ready('1'),
      { name: 'a', version: '2', state: 'LOADING', reason: 'workers differ: worker 1: READY; worker 2: LOADING' },
      { name: 'b', state: 'UNAVAILABLE', reason: 'unloaded' },
      { name: 'a', version: '3', state: 'READY', reason: 'workers differ: worker 2: READY' },
    ],
  })
})
