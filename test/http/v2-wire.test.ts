// The V2 wire rules alone (no app): body splitting, the features input from JSON or bytes, and output tensors as
// the binary tensor extension lays them out (little-endian; BYTES as a 4-byte length, then the UTF-8 bytes).
import t from 'tap'
import { encodeResponse, readFeatures, splitInferBody, tensorBytes, type RequestInput } from '../../src/http/v2-wire.js'
import { ServiceError } from '../../src/errors.js'

const hex = (b: Buffer) => b.toString('hex')
const fresh = (d: number) => () => new Float32Array(d)

t.test('tensorBytes: BYTES, INT64 and FP32 as Triton lays them out', async (t) => {
  t.equal(hex(tensorBytes({ name: 'x', datatype: 'BYTES', shape: [2], data: ['ab', 'é'], binary: true })), '02000000' + '6162' + '02000000' + 'c3a9')
  t.equal(hex(tensorBytes({ name: 'x', datatype: 'BYTES', shape: [1], data: [''], binary: true })), '00000000', 'an empty string is a zero length')
  t.equal(hex(tensorBytes({ name: 'x', datatype: 'INT64', shape: [2], data: [1, 2 ** 40 + 3], binary: true })), '0100000000000000' + '0300000000010000')
  t.equal(hex(tensorBytes({ name: 'x', datatype: 'FP32', shape: [2], data: [1, -2.5], binary: true })), '0000803f' + '000020c0')
})

t.test('encodeResponse: JSON only, or JSON + binary outputs in output order', async (t) => {
  const json = encodeResponse({ model_name: 'm' }, [{ name: 'a', datatype: 'FP32', shape: [1], data: [0.1], binary: false }])
  t.same(json, { kind: 'json', body: { model_name: 'm', outputs: [{ name: 'a', datatype: 'FP32', shape: [1], data: [Math.fround(0.1)] }] } })
  const mixed = encodeResponse({ id: '7' }, [
    { name: 'ids', datatype: 'INT64', shape: [1], data: [5], binary: true },
    { name: 'labels', datatype: 'BYTES', shape: [1], data: ['z'], binary: false },
    { name: 'names', datatype: 'BYTES', shape: [1], data: ['yy'], binary: true },
  ])
  if (mixed.kind !== 'binary') throw new Error('expected binary')
  const head = JSON.parse(mixed.body.subarray(0, mixed.headerLength).toString())
  t.same(head, {
    id: '7',
    outputs: [
      { name: 'ids', datatype: 'INT64', shape: [1], parameters: { binary_data_size: 8 } },
      { name: 'labels', datatype: 'BYTES', shape: [1], data: ['z'] },
      { name: 'names', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 6 } },
    ],
  })
  t.equal(hex(mixed.body.subarray(mixed.headerLength)), '0500000000000000' + '02000000' + '7979', 'the binary outputs follow the JSON in order')
})

t.test('splitInferBody: the header length splits JSON from bytes', async (t) => {
  const json = Buffer.from('{"inputs":[]}')
  t.same(splitInferBody(json, undefined), { json: { inputs: [] }, binary: Buffer.alloc(0) })
  const split = splitInferBody(Buffer.concat([json, Buffer.from([1, 2, 3])]), String(json.length))
  t.same(split.json, { inputs: [] })
  t.equal(hex(split.binary), '010203')
  for (const [header, pattern] of [['-1', /got "-1"/], ['1e3', /got "1e3"/], ['99', /got "99"/]] as const) {
    t.throws(() => splitInferBody(json, header), pattern, `header ${header}`)
  }
  t.throws(() => splitInferBody(json, '0'), /empty body/)
  const err = t.throws(() => splitInferBody(Buffer.from('{"a":'), undefined)) as ServiceError
  t.equal(err.code, 'MHE_MALFORMED_JSON')
})

t.test('readFeatures: JSON flat or nested and binary give the same floats', async (t) => {
  const d = 3
  const values = [0.5, -1, 2, 3.25, 0, -0.125]
  const flat: RequestInput = { name: 'features', datatype: 'FP32', shape: [2, d], data: values }
  const nested: RequestInput = { ...flat, data: [values.slice(0, 3), values.slice(3)] }
  const bytes = Buffer.from(new Float32Array(values).buffer)
  const binary: RequestInput = { name: 'features', datatype: 'FP32', shape: [2, d], parameters: { binary_data_size: bytes.length } }
  const expected = Array.from(new Float32Array(values))
  for (const [what, input, tail] of [['flat', flat, Buffer.alloc(0)], ['nested', nested, Buffer.alloc(0)], ['binary', binary, bytes]] as const) {
    const got = readFeatures([input], tail, d, 10, fresh(d))
    t.equal(got.n, 2, `${what}: n`)
    t.same(Array.from(got.features), expected, `${what}: values`)
  }
  // An unaligned binary part (JSON of odd length before it) still reads right.
  const odd = Buffer.concat([Buffer.from([9]), bytes]).subarray(1)
  t.same(Array.from(readFeatures([binary], odd, d, 10, fresh(d)).features), expected, 'unaligned bytes')
  t.throws(() => readFeatures([{ ...flat, shape: [11, d], data: [] }], Buffer.alloc(0), d, 10, fresh(d)), /at most 10 instances per request, got 11/, 'the instance limit is checked before allocating')
})
