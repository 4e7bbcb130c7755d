// The GPU check's answer comparison (bench/gpu/compare.ts): what counts as the same answer on two backends.
import t from 'tap'
import { compareAnswers, LOG_SCORE_TOLERANCE, type Answer } from '../../bench/gpu/compare.js'

const ref: Answer[] = [
  [[7, -0.1], [3, -2.5], [9, -3.0]],
  [[1, -0.5], [2, -0.9], [4, -4.0]],
]

t.test('equal answers, and scores within the tolerance', async (t) => {
  t.match(compareAnswers(ref, ref), { instances: 2, labels: 6, nearTies: 0, mismatches: 0, maxAbsLogScoreDiff: 0 })
  const close = ref.map((a) => a.map(([id, s]): [number, number] => [id, s + LOG_SCORE_TOLERANCE / 2]))
  const r = compareAnswers(ref, close)
  t.equal(r.mismatches, 0)
  t.ok(Math.abs(r.maxAbsLogScoreDiff - LOG_SCORE_TOLERANCE / 2) < 1e-12)
})

t.test('a near-tie may swap ids; a real difference may not', async (t) => {
  const tie: Answer[] = [[[7, -0.1], [3, -2.5], [9, -3.0]], [[1, -0.5], [4, -4.0], [2, -4.0004]]]
  const tieRef: Answer[] = [ref[0]!, [[1, -0.5], [2, -4.0], [4, -4.0003]]]
  t.match(compareAnswers(tieRef, tie), { mismatches: 0, nearTies: 2 })
  // The ids swapped with their scores kept in place: each label now scores 0.4 apart on the two backends.
  const swapped: Answer[] = [ref[0]!, [[2, -0.5], [1, -0.9], [4, -4.0]]]
  const r = compareAnswers(ref, swapped)
  t.equal(r.mismatches, 2)
  t.match(r.examples[0], /instance 1: label 1 log-score -0\.9 vs -0\.5/)
})

t.test('a label one side misses only counts at the boundary', async (t) => {
  // Label 5 replaces the last one, scoring within the tolerance of it: a tie at the k-th place.
  const boundary: Answer[] = [ref[0]!, [[1, -0.5], [2, -0.9], [5, -4.0005]]]
  t.match(compareAnswers(ref, boundary), { mismatches: 0, nearTies: 1 })
  // Label 5 beats what the reference kept: the reference missed it (and the other side dropped label 4).
  const better: Answer[] = [ref[0]!, [[1, -0.5], [5, -0.7], [2, -0.9]]]
  const r = compareAnswers(ref, better)
  t.equal(r.mismatches, 1, 'label 5 is not in the reference but beats its last label')
  t.match(r.examples, [/label 5 .*not in the reference/])
})

t.test('lengths and NaN', async (t) => {
  t.equal(compareAnswers(ref, ref.slice(0, 1)).mismatches, 1, 'an instance missing')
  t.equal(compareAnswers(ref, [ref[0]!, ref[1]!.slice(0, 2)]).mismatches, 1, 'a label missing')
  t.equal(compareAnswers(ref, [ref[0]!, [[1, NaN], [2, -0.9], [4, -4.0]]]).mismatches, 1, 'NaN is never close')
})
