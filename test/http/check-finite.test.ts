// checkFinite (every predict route's check of raw float32 values): any NaN or ±Infinity, at any position (the
// four-way sum and its tail), is found and named; finite values, -0 and float32's extremes pass.
import t from 'tap'
import { checkFinite } from '../../src/http/routes/predict.js'

t.test('a non-finite value anywhere is refused with its instance and position', async (t) => {
  for (const length of [1, 3, 4, 7, 8, 13]) {
    for (let at = 0; at < length; at++) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const v = new Float32Array(length).fill(1.5)
        v[at] = bad
        const d = length % 2 === 0 ? length / 2 : length
        t.throws(() => checkFinite(v, d), { code: 'MHE_BAD_INSTANCE', message: `instance ${Math.floor(at / d)} value ${at % d} is ${bad}` }, `${bad} at ${at} of ${length}`)
      }
    }
  }
})

t.test('finite values pass, from -0 to the largest float32', async (t) => {
  const v = new Float32Array([-0, 0, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-45, 1, -1, 2.5])
  t.doesNotThrow(() => checkFinite(v, 9))
  t.doesNotThrow(() => checkFinite(new Float32Array(0), 1))
})
