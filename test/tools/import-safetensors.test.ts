// The safetensors reader: decoding F32/F16/BF16 exactly, and rejecting every malformed file with a clear message.
import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { halfToFloat, openSafetensors, parseSafetensors, SafetensorsError } from '../../tools/import/safetensors.js'
import { bf16Bits, buildSafetensors, f32, f32Bytes, u16Bytes, type RawTensor } from '../helpers/safetensors.js'

const FIXTURES = new URL('../fixtures/pytorch/', import.meta.url)

const rejects = (t: Test, buf: Uint8Array, pattern: RegExp, name: string): void => {
  t.throws(() => parseSafetensors(buf, 'x.safetensors'), pattern, name)
  t.throws(() => parseSafetensors(buf, 'x.safetensors'), SafetensorsError, `${name}: a SafetensorsError`)
}

t.test('F32, F16 and BF16 decode exactly to float32', async (t) => {
  const halfCases: [number, number][] = [
    [0x0000, 0], [0x8000, -0], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
    [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x0400, 2 ** -14], [0x7c00, Infinity], [0xfc00, -Infinity],
  ]
  const bf = [1, -2.5, 3.140625, 2 ** -100, -65536]
  const buf = buildSafetensors([
    f32('a', [2, 2], [1.5, -0.25, 3.4028234663852886e38, 1e-45]),
    { name: 'h', dtype: 'F16', shape: [halfCases.length], bytes: u16Bytes(halfCases.map(([b]) => b)) },
    { name: 'b', dtype: 'BF16', shape: [bf.length], bytes: u16Bytes(bf16Bits(bf)) },
  ], { metadata: { format: 'pt' } })
  const st = parseSafetensors(buf, 'ok.safetensors')
  t.same(st.header.metadata, { format: 'pt' })
  t.same(st.header.tensors.map((x) => [x.name, x.dtype, x.shape]), [['a', 'F32', [2, 2]], ['h', 'F16', [11]], ['b', 'BF16', [5]]])
  t.same(Array.from(await st.read('a')), Array.from(Float32Array.from([1.5, -0.25, 3.4028234663852886e38, 1e-45])))
  const h = await st.read('h')
  halfCases.forEach(([bits, want], i) => t.ok(Object.is(h[i], want), `half 0x${bits.toString(16)} -> ${want}, got ${h[i]}`))
  t.ok(Number.isNaN(halfToFloat(0x7e00)), 'half NaN')
  const b = await st.read('b')
  t.same(Array.from(b), Array.from(Float32Array.from(bf)), 'bf16 values (chosen to be representable) round-trip')
})

t.test('every one of the 65536 half patterns agrees with a reference decoder', async (t) => {
  // Reference: build the float32 bit pattern from the half's fields (normals re-biased, subnormals by value).
  let bad = 0
  for (let bits = 0; bits < 0x10000; bits++) {
    const e = (bits >> 10) & 0x1f
    const m = bits & 0x3ff
    const s = bits >> 15 ? -1 : 1
    const want = e === 0x1f ? (m ? NaN : s * Infinity) : e === 0 ? s * m / 16777216 : s * 2 ** (e - 15) * (1024 + m) / 1024
    const got = halfToFloat(bits)
    if (!(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)))) bad++
  }
  t.equal(bad, 0)
})

t.test('unknown dtypes are rejected in the header; known but undecodable ones when read', async (t) => {
  rejects(t, buildSafetensors([{ name: 'w', dtype: 'F128', shape: [1], bytes: new Uint8Array(16) }]), /tensor "w": unknown dtype "F128"/, 'unknown dtype')
  const st = parseSafetensors(buildSafetensors([
    { name: 'steps', dtype: 'I64', shape: [2], bytes: new Uint8Array(16) },
    { name: 'w64', dtype: 'F64', shape: [1], bytes: new Uint8Array(8) },
  ]), 'x.safetensors')
  await t.rejects(st.read('steps'), /tensor "steps" has dtype I64; supported: F32, F16, BF16/)
  await t.rejects(st.read('w64'), /tensor "w64" has dtype F64; supported: F32, F16, BF16 \(convert with model.float\(\)/)
  await t.rejects(st.read('nope'), /no tensor named "nope"/)
})

t.test('a zero-size tensor and an empty file are fine', async (t) => {
  const st = parseSafetensors(buildSafetensors([f32('e', [0, 3], []), f32('s', [], [7])]))
  t.equal((await st.read('e')).length, 0)
  t.same(Array.from(await st.read('s')), [7], 'a scalar has one element')
  t.same(parseSafetensors(buildSafetensors([])).header.tensors, [])
})

t.test('lengths and truncation', async (t) => {
  const good = buildSafetensors([f32('w', [2, 3], [1, 2, 3, 4, 5, 6]), f32('b', [2], [1, 2])])
  rejects(t, good.subarray(0, 5), /truncated file: 5 bytes, shorter than the 8-byte header length/, 'shorter than the prefix')
  rejects(t, new Uint8Array(0), /truncated file: 0 bytes/, 'empty file')
  rejects(t, buildSafetensors([f32('w', [1], [1])], { headerLength: 10_000n }), /header length 10000 goes past the end of the file/, 'header length past the end')
  rejects(t, buildSafetensors([], { headerLength: 2n ** 63n }), /header length 9223372036854775808 goes past the end/, 'huge header length')
  rejects(t, good.subarray(0, good.byteLength - 4), /truncated file: tensor "b" needs bytes \[24, 32\) of the data section, which has only 28 bytes/, 'data cut short')
  const headerOnly = good.subarray(0, 8 + Number(new DataView(good.buffer).getBigUint64(0, true)))
  rejects(t, headerOnly, /truncated file: tensor "w" needs bytes \[0, 24\) of the data section, which has only 0 bytes/, 'no data at all')
  rejects(t, good.subarray(0, 40), /header is not valid JSON|goes past the end/, 'cut inside the header')
})

t.test('headers that are not a safetensors header', async (t) => {
  const raw = (json: string | Uint8Array): Uint8Array => {
    const head = typeof json === 'string' ? new TextEncoder().encode(json) : json
    const out = new Uint8Array(8 + head.byteLength)
    new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true)
    out.set(head, 8)
    return out
  }
  rejects(t, raw('{"w": {"dtype": "F32",'), /header is not valid JSON/, 'broken JSON')
  rejects(t, raw('[1, 2, 3]'), /header does not start with '\{'/, 'an array')
  rejects(t, raw('PK\u0003\u0004 zip'), /header does not start with '\{'.*not a safetensors file/, 'another format')
  rejects(t, raw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /header is not valid UTF-8/, 'not UTF-8')
  rejects(t, raw('{"w": 3}'), /tensor "w": expected an object \{dtype, shape, data_offsets\}/, 'entry not an object')
  rejects(t, raw('{"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}'), /tensor "w": "shape" must be an array of non-negative integers, got \[-1\]/, 'negative dim')
  rejects(t, raw('{"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}'), /"shape" must be an array of non-negative integers/, 'fractional dim')
  rejects(t, raw('{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}'), /"data_offsets" must be \[begin, end\]/, 'one offset')
  rejects(t, raw('{"w": {"dtype": "F32", "shape": [1]}}'), /"data_offsets" must be \[begin, end\]/, 'no offsets')
  rejects(t, raw('{"__metadata__": {"a": 1}}'), /"__metadata__" must be an object of string values/, 'metadata not strings')
  t.same(parseSafetensors(raw('{}   ')).header.tensors, [], 'trailing space padding is allowed')
})

t.test('headers that lie about offsets', async (t) => {
  const tensors: RawTensor[] = [f32('w', [2, 3], [1, 2, 3, 4, 5, 6]), f32('b', [2], [1, 2])]
  type Entry = { dtype: string; shape: number[]; data_offsets: number[] }
  const lie = (edit: (h: Record<string, Entry>) => void) =>
    buildSafetensors(tensors, { header: (h) => { edit(h as Record<string, Entry>); return h } })

  rejects(t, lie((h) => { h.w!.data_offsets = [0, 20] }), /tensor "w": data_offsets \[0, 20\] hold 20 bytes, but dtype F32 x shape \[2, 3\] needs 24/, 'size != dtype x shape')
  rejects(t, lie((h) => { h.w!.shape = [3, 3] }), /tensor "w": data_offsets \[0, 24\] hold 24 bytes, but dtype F32 x shape \[3, 3\] needs 36/, 'shape bigger than the data')
  rejects(t, lie((h) => { h.b!.dtype = 'F16' }), /tensor "b": data_offsets \[24, 32\] hold 8 bytes, but dtype F16 x shape \[2\] needs 4/, 'dtype changed')
  rejects(t, lie((h) => { h.b!.data_offsets = [16, 24] }), /tensors "w" \[0, 24\) and "b" \[16, 24\) overlap/, 'overlap')
  rejects(t, lie((h) => { h.b!.data_offsets = [0, 8] }), /overlap in the data section/, 'same start')
  rejects(t, lie((h) => { h.w!.data_offsets = [8, 0] }), /tensor "w": data_offsets \[8, 0\] end before they begin/, 'reversed')
  rejects(t, lie((h) => { h.w!.data_offsets = [4, 28]; h.b!.data_offsets = [28, 36] }), /needs bytes \[28, 36\) of the data section, which has only 32 bytes/, 'shifted past the end')
  rejects(t, lie((h) => { delete h.b }), /data section has 32 bytes but the tensors end at byte 24 \(trailing bytes\)/, 'a tensor left out')
  rejects(t, lie((h) => { h.b!.data_offsets = [24, 32]; h.w!.shape = [1, 4]; h.w!.data_offsets = [8, 24] }), /bytes \[0, 8\) of the data section belong to no tensor \(hole before "w"\)/, 'hole')
})

t.test('openSafetensors reads a file lazily and agrees with the in-memory parser', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'mhe-st-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const buf = buildSafetensors([f32('w', [2, 2], [1, 2, 3, 4]), { name: 'h', dtype: 'F16', shape: [1], bytes: u16Bytes([0x3c00]) }])
  const path = join(dir, 'a.safetensors')
  await writeFile(path, buf)
  const st = await openSafetensors(path)
  t.same(st.header, parseSafetensors(buf, path).header)
  t.same(Array.from(await st.read('w')), [1, 2, 3, 4])
  t.same(Array.from(await st.read('h')), [1])
  // Truncated on disk: the header check catches it before any tensor is read.
  await writeFile(path, buf.subarray(0, buf.byteLength - 1))
  await t.rejects(openSafetensors(path), /a\.safetensors: truncated file: tensor "h" needs bytes \[16, 18\)/)
  await writeFile(path, f32Bytes([1]))
  await t.rejects(openSafetensors(path), /truncated file: 4 bytes, shorter than the 8-byte header length/)
})

t.test('the committed PyTorch fixtures parse (written by Python, with an int64 buffer and a decoy layer)', async (t) => {
  for (const [file, dtype] of [['mhp_f32.safetensors', 'F32'], ['mhp_f16.safetensors', 'F16'], ['mhp_bf16.safetensors', 'BF16']] as const) {
    const buf = await readFile(new URL(file, FIXTURES))
    const st = parseSafetensors(buf, file)
    t.same(st.header.tensors.map((x) => `${x.name}:${x.dtype}:${x.shape.join('x')}`).sort(),
      ['encoder.bias:' + dtype + ':32', 'encoder.weight:' + dtype + ':32x48', 'fc.bias:' + dtype + ':18', 'fc.weight:' + dtype + ':18x32', 'steps:I64:1'], file)
    const w = await st.read('fc.weight')
    t.equal(w.length, 18 * 32)
    t.ok(w.every(Number.isFinite) && w.some((v) => v !== 0), `${file}: finite, non-zero weights`)
  }
})
