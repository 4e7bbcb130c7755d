// scanInstances reads a body exactly as JSON.parse + pack do (every value bit for bit, -0 and overflows included), and
// leaves every body it does not take to them: it may decline, never differ. Every test runs twice: rows read in JS,
// and rows read by native/scan.cc where it is built (the JS reader taking over the rows it gives up on).
import t, { type Test } from 'tap'
import { rowReader, scanInstances, useNativeRows, SCAN_VERSION, type ScanAddon } from '../../src/http/scan-instances.js'
import { pack, type Packed } from '../../src/http/packed-rows.js'
import { hasCompiler } from '../helpers/native.js'
import { nativeAddon } from '../../src/native-addon.js'

const bytes = (s: string): Buffer => Buffer.from(s, 'utf8')

/** A repeatable uniform [0, 1) sequence (a linear congruential generator). */
function seeded(seed: number): () => number {
  return () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32
}

/** What the JSON path makes of the body: undefined when it does not parse or is not the usual shape. */
function reference(body: string): Packed | undefined {
  try {
    return pack(JSON.parse(body))
  } catch {
    return undefined
  }
}

/** Same values bit for bit (Object.is: -0 and NaN too), lengths, top_k and first non-finite value. */
function same(a: Packed, b: Packed): boolean {
  if (a.values.length !== b.values.length || a.topK !== b.topK) return false
  if (!a.values.every((v, i) => Object.is(v, b.values[i]))) return false
  if (a.lengths.length !== b.lengths.length || !a.lengths.every((v, i) => v === b.lengths[i])) return false
  return JSON.stringify(a.nonFinite) === JSON.stringify(b.nonFinite) && Object.is(a.nonFinite?.sent, b.nonFinite?.sent)
}

/** The scanner takes the body, with the same result as the JSON path. */
function readsAsJson(body: string): boolean {
  const got = scanInstances(bytes(body))
  const want = reference(body)
  return got !== undefined && want !== undefined && same(got, want)
}

function takes(t: Test, body: string, what: string): void {
  t.ok(readsAsJson(body), `${what}: read as JSON.parse reads it`)
}

/** Declines the body (the JSON path parses it, and describes it if it is wrong). */
function declines(t: Test, body: string, what: string): void {
  t.equal(scanInstances(bytes(body)), undefined, `${what}: left to JSON.parse`)
}

/** The same tests, with rows read in JS (native false) or natively. */
function suite(t: Test, native: boolean): void {
  const test = (name: string, fn: (t: Test) => void): void => {
    t.test(name, async (t) => {
      t.equal(useNativeRows(native), native, native ? 'rows read natively' : 'rows read in JS')
      fn(t)
    })
  }
  test('the usual bodies are read as JSON.parse reads them', (t) => {
    takes(t, '{"instances":[[1,2,3]]}', 'integers')
    takes(t, '{"instances": [[0.5, -0.25], [1e-3, 2E+2]], "top_k": 3}', 'two rows, exponents, top_k after')
    takes(t, '{"top_k":2,"instances":[[-0,0,-0.0,0.0]]}', 'signed zeros, top_k first')
    takes(t, ' \n\t{ "instances" :\r\n [ [ 1 , 2 ] ] } \n', 'whitespace everywhere JSON allows it')
    takes(t, '{"instances":[]}', 'no instances (the route refuses it as an empty batch)')
    takes(t, '{"instances":[[],[1]]}', 'an empty row (the route names its length)')
    takes(t, '{"instances":[[1e39, -1e39, 3.4028235e38, 1e-46]]}', 'float32 overflow and underflow')
    takes(t, '{"instances":[[0.12345678901234568, 123456789012345678901, 1.7976931348623157e308, 5e-324]]}', 'more digits than the fast path')
    takes(t, '{"instances":[[1e400]]}', 'a float64 overflow')
    takes(t, '{"instances":[[9007199254740991, 0.9007199254740991, 1234567890123456e-20, 0.00000000000000000012345]]}', 'mantissas just below 2^53')
    takes(t, '{"instances":[[0.000000000000000000000001234, 123456789012345e22, 1e22, 1e23, 9007199254740993]]}', 'past 10^22 and 2^53')
    takes(t, '{"instances":[[1]],"top_k":2.0}', 'an integral top_k written as a float')
    takes(t, `{"instances":[${Array.from({ length: 3 }, (_, r) => `[${Array.from({ length: 30000 }, (_, j) => ((j * 7 + r) % 1000) / 997 - 0.5).join(',')}]`).join(',')}]}`, 'more values than the kept buffer holds')
    takes(t, `{"instances":[${Array.from({ length: 40 }, (_, i) => `[${i},${-i / 8}]`).join(',')}]}`, 'forty rows')
  })

  test('random numbers in every JSON form: bit for bit', (t) => {
    const rand = seeded(12345)
    const forms = [
      (x: number) => String(x),
      (x: number) => x.toFixed(Math.floor(rand() * 10)),
      (x: number) => x.toExponential(Math.floor(rand() * 17)),
      (x: number) => x.toPrecision(1 + Math.floor(rand() * 20)),
      (x: number) => String(Number.isFinite(Math.fround(x)) ? Math.fround(x) : x),
      (x: number) => x.toExponential(3).replace('e', 'E'),
    ]
    let mismatches = 0
    for (let body = 0; body < 200; body++) {
      const rows: string[] = []
      for (let r = 0; r < 1 + Math.floor(rand() * 3); r++) {
        const values: string[] = []
        for (let j = 0; j < 50; j++) {
          const scale = 10 ** Math.floor(rand() * 80 - 40)
          const x = (rand() * 2 - 1) * scale
          values.push(forms[Math.floor(rand() * forms.length)]!(x))
        }
        rows.push(`[${values.join(',')}]`)
      }
      if (!readsAsJson(`{"instances":[${rows.join(',')}]}`)) mismatches++
    }
    t.equal(mismatches, 0, '200 bodies of 50-150 values each: the same float32 values')
  })

  test('numbers as clients print them, and the odd ones: bit for bit', (t) => {
    const rand = seeded(777)
    // float32 features as JS and Python print them: the double's shortest form, often 17 significant digits
    const f32 = new Float32Array(3 * 768).map(() => (rand() * 2 - 1) * 10 ** Math.floor(rand() * 78 - 42))
    takes(t, JSON.stringify({ instances: [0, 1, 2].map((r) => Array.from(f32.subarray(r * 768, (r + 1) * 768))) }), 'float32s printed as doubles')
    const doubles = Array.from({ length: 2000 }, () => (rand() * 2 - 1) * 10 ** (rand() * 616 - 308))
    takes(t, JSON.stringify({ instances: [doubles] }), 'doubles from 1e-308 to 1e308')
    // Halfway between two float32s, and within a double's ulp of it in 15-17 digits: a double one ulp off rounds the
    // other way here, so these check the double before the float32 rounding.
    const ties: string[] = []
    for (let i = 0; i < 3000; i++) {
      const x = Math.fround((rand() * 2 - 1) * 10 ** Math.floor(rand() * 60 - 30))
      const up = new Float32Array([x])
      new Int32Array(up.buffer)[0]! += 1
      const tie = (x + up[0]!) / 2
      ties.push(tie.toPrecision(15), tie.toPrecision(16), tie.toPrecision(17), String(tie))
    }
    takes(t, `{"instances":[[${ties.join(',')}]]}`, 'float32 ties in 15 to 17 digits')
    const odd = ['4.9e-324', '2.2250738585072011e-308', '2.2250738585072014e-308', '1.401298464324817e-45', '7e-46', '3.4028235677973366e38', '3.4028234663852886e38',
      '1e0000000000000000000000001', '1e-0000000000000000000000001', '0.1000000000000000055511151231257827021181583404541015625', '123456789012345678901234567890e-30',
      '9007199254740993', '9007199254740992.5', '1e-400', '-1e-400', '1e99999999999', '-0e-5', '0.0000000000000000000000000000000000000000000000000000000000000000000001']
    takes(t, `{"instances":[[${odd.join(', ')}]]}`, 'subnormals, ties, float32 edges, exponents of many digits, out of range')
    for (const x of odd) takes(t, `{"instances":[[ ${x} ]]}`, x)
  })

  test('anything else is left to JSON.parse', (t) => {
    declines(t, '{"instances":[[1]],"extra":1}', 'another key')
    declines(t, '{"instances":[[1]],"instances":[[2]]}', 'a duplicate key (JSON.parse keeps the last)')
    declines(t, '{"instan\\u0063es":[[1]]}', 'an escaped key')
    declines(t, '{"instances":[[1]],"top_k":0}', 'top_k below 1')
    declines(t, '{"instances":[[1]],"top_k":1.5}', 'a fractional top_k')
    declines(t, '{"instances":[[1]],"top_k":"2"}', 'top_k as a string')
    declines(t, '{"instances":[{"features":[1]}]}', 'rows as objects')
    declines(t, '{"instances":[1,2]}', 'a flat array')
    declines(t, '{"instances":[[[1]]]}', 'nested deeper')
    declines(t, '{"instances":[["1"]]}', 'a number as a string')
    declines(t, '{"instances":[[null]]}', 'null')
    declines(t, '[[1]]', 'not an object')
    declines(t, '\ufeff{"instances":[[1]]}', 'a byte-order mark')
    declines(t, '{"instances":[[1]]}x', 'trailing bytes')
    declines(t, '{"instances":[[1]]', 'cut short')
    declines(t, '{"instances":[[1.5', 'cut short in a number')
    declines(t, '{"instances":[[1e5', 'cut short in an exponent')
    declines(t, '{"instances":[[1,]]}', 'a trailing comma')
    declines(t, '{"instances":[[01]]}', 'a leading zero')
    declines(t, '{"instances":[[1.]]}', 'a dot without digits')
    declines(t, '{"instances":[[.5]]}', 'no integer part')
    declines(t, '{"instances":[[+1]]}', 'a plus sign')
    declines(t, '{"instances":[[1e]]}', 'an exponent without digits')
    declines(t, '{"instances":[[-]]}', 'a lone minus')
    declines(t, '{"instances":[[NaN, Infinity]]}', 'NaN and Infinity')
    declines(t, '{"instances":[[1]],}', 'a trailing comma in the object')
    declines(t, '{}', 'no instances')
    declines(t, '', 'empty')
  })
}

t.test('rows read in JS', async (t) => suite(t, false))
t.test('rows read by native/scan.cc', { skip: !hasCompiler && 'no C++ compiler: not built' }, async (t) => suite(t, true))

t.test('the start-up line says which reader runs', async (t) => {
  useNativeRows(false)
  t.equal(rowReader(), 'in JS: turned off', 'turned off')
  if (useNativeRows(true)) t.equal(rowReader(), 'natively (native/scan.cc)', 'native where built')
  else t.match(rowReader(), /^in JS: native\/build\/scan\.node is not built/, 'why not, where not built')
})

t.test('native/scan.cc reads the rows itself, and leaves to JS only what it should', { skip: !hasCompiler && 'no C++ compiler: not built' }, async (t) => {
  // The suites above pass through the JS reader whenever the native one gives up: here it must not give up.
  const found = nativeAddon<ScanAddon>('scan', SCAN_VERSION)
  if (!('addon' in found)) return t.fail(found.reason)
  const { row } = found.addon
  const room = new Float32Array(8)
  const end = new Int32Array(1)
  const body = Buffer.from('[ 1 , 2.5,-0, 0.10000000149011612 ]x')
  t.equal(row(body, 1, room, 2, end), 6, 'four values after the two already there')
  t.equal(end[0], body.length - 1, 'ends past the ]')
  t.ok(Object.is(room[4], -0) && room[3] === 2.5 && room[5] === Math.fround(0.1), 'their float32s')
  t.equal(row(Buffer.from('[]'), 1, room, 0, end), 0, 'an empty row')
  for (const bad of ['[1e39]', '[1e400]', '[01]', '[1,]', '[1', '[NaN]', '[1 2]']) t.equal(row(Buffer.from(bad), 1, room, 0, end), -1, `${bad}: left to JS`)
  t.equal(row(Buffer.from('[1,2,3]'), 1, room, 6, end), -1, 'no room for the third value: left to JS')
  t.throws(() => row(Buffer.from('[1]'), 1, room, 9, end), TypeError, 'at past the room')
})
