// Fuzzing of POST /predict shared by test/system/fuzz.test.ts (in-process, a few thousand cases) and bench/fuzz.ts
// (a real listening server, 100,000+): request generators (fast-check), an oracle, and the checks. The rules
// come from their owners: limits from src/config.ts, request and response shapes from src/http/schemas.ts, error
// codes and statuses from src/errors.ts, id composition from src/mhe/codec.ts.

import { STATUS_CODES } from 'node:http'
import fc from 'fast-check'
import type { FastifyInstance } from 'fastify'
import type { TSchema } from 'typebox'
import { Value } from 'typebox/value'
import type { Config } from '../../src/config.js'
import type { Manifest } from '../../src/bundle/manifest.js'
import { ERROR_CODES, errors, type ServiceError } from '../../src/errors.js'
import { ErrorBody, PredictJsonBody, PredictResponse, TopKQuery } from '../../src/http/schemas.js'
import { compose } from '../../src/mhe/codec.js'
import type { HeadsBundleOptions, MadeBundle } from './bundles.js'

/** The bundle fuzzed: its product of heads (35) is past numLabels, so ids 30..34 exist and must never come back. */
export const FUZZ_BUNDLE = { featureDim: 8, heads: [5, 7], numLabels: 30, seed: 3, outputs: 'concat' } satisfies HeadsBundleOptions

/** Settings small enough for the generators to cross: top_k past numLabels, a body limit they reach. */
export const FUZZ_SETTINGS: Record<string, string> = {
  MHE_MAX_INSTANCES: '16',
  MHE_MAX_TOP_K: '50',
  MHE_BODY_LIMIT: String(256 * 1024),
  MHE_MAX_DELAY_MS: '0',
  // Fuzzing is about input, not load: the event-loop guard would answer 503 when a 60k-deep body meets a busy machine.
  MHE_MAX_EVENT_LOOP_DELAY_MS: '0',
}

/** What the app under test serves and accepts, read from its configuration and its bundle. */
export interface FuzzTarget extends Pick<Config, 'maxInstances' | 'maxTopK' | 'bodyLimit'>, Pick<Manifest, 'featureDim' | 'heads' | 'numLabels'> {
  labels: readonly string[]
}

export const fuzzTarget = (config: Config, bundle: MadeBundle): FuzzTarget => ({
  maxInstances: config.maxInstances,
  maxTopK: config.maxTopK,
  bodyLimit: config.bodyLimit,
  featureDim: bundle.manifest.featureDim,
  heads: bundle.manifest.heads,
  numLabels: bundle.manifest.numLabels,
  labels: bundle.labels,
})

/** One request, transport-neutral: sent by app.inject or over a socket. */
export interface FuzzRequest {
  family: string
  path: string
  /** An array means the header line is sent more than once. */
  contentType: string | string[] | undefined
  payload: Buffer
}

export interface FuzzResponse {
  statusCode: number
  body: string
}

/** What the oracle predicts from the request alone; 'any' where the rules are Fastify's business, not ours. */
export type Expectation =
  | { kind: 'ok'; n: number; k: number; mayOverflow: boolean }
  | { kind: 'reject'; as?: Pick<ServiceError, 'statusCode' | 'code'> }
  | { kind: 'any' }

// ---------------------------------------------------------------------------------------------------------------
// Content types and query strings

// Types the service must take as JSON / as binary, types it must refuse with 415; anything else is 'unknown'.
export const JSON_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json;charset=UTF-8',
  'APPLICATION/JSON',
  'Application/Json; Charset=latin1',
  'application/json; foo=bar',
]
export const BINARY_TYPES = ['application/octet-stream', 'application/octet-stream; charset=binary', 'APPLICATION/OCTET-STREAM']
export const UNSUPPORTED_TYPES = [
  'text/plain',
  'text/plain; charset=utf-8',
  'multipart/form-data; boundary=----fuzz',
  'application/x-www-form-urlencoded',
  'text/json',
  'application/jsonx',
  'application/vnd.api+json',
  'application/octet-streamx',
  'image/png',
  '*/*',
  'application/*',
  'application/json, text/plain',
]

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 })

/** A known type with a few characters changed, inserted or recased. */
const mutatedType = fc
  .tuple(fc.constantFrom(...JSON_TYPES, ...BINARY_TYPES), fc.nat(), fc.constantFrom(' ', ';', ',', '"', '=', '\t', 'x', '/', '+', '*'), fc.boolean())
  .map(([type, at, ch, upper]) => {
    const i = at % (type.length + 1)
    const s = type.slice(0, i) + ch + type.slice(i)
    return upper ? s.toUpperCase() : s
  })

export const contentTypeArb = (prefer: 'json' | 'binary' | 'any'): fc.Arbitrary<string | string[] | undefined> => {
  const other = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...UNSUPPORTED_TYPES) },
    { weight: 2, arbitrary: printable },
    { weight: 2, arbitrary: mutatedType },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom(...JSON_TYPES, ...BINARY_TYPES, ...UNSUPPORTED_TYPES), { minLength: 2, maxLength: 3 }) },
  )
  const json = fc.constantFrom(...JSON_TYPES)
  const binary = fc.constantFrom(...BINARY_TYPES)
  if (prefer === 'json') return fc.oneof({ weight: 8, arbitrary: json }, { weight: 1, arbitrary: binary }, { weight: 2, arbitrary: other })
  if (prefer === 'binary') return fc.oneof({ weight: 8, arbitrary: binary }, { weight: 1, arbitrary: json }, { weight: 2, arbitrary: other })
  return fc.oneof(json, binary, other)
}

/** top_k as query text, in every form a client might send. */
const topKText = (t: FuzzTarget): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: t.maxTopK }).map(String) },
    { weight: 2, arbitrary: fc.integer({ min: -5, max: t.maxTopK + 5 }).map(String) },
    { weight: 1, arbitrary: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '', '0', '-0', '+5', ' 5', '5 ', '5.0', '05', '1e1', '0x10', '0b11', '1.5', 'abc', 'true', 'null', 'Infinity',
        '-Infinity', 'NaN', '1e400', '9'.repeat(40), '9007199254740993', '[1]', '{}', '%', '\u0661', '\uff11', '5\u0000', '2,3',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  )

export interface QueryParts {
  /** Values of top_k in order (more than one = a repeated parameter); undefined = absent. */
  topK?: string[]
  /** Unknown parameters: must be ignored. */
  extras: [string, string][]
  /** Raw, unencoded text appended as is (the oracle gives up where parsers may differ: brackets, '+', bad escapes). */
  raw?: string
}

const RAW_QUERIES = [
  'top_k=%ZZ', '%', '&&&', 'top_k[]=1', 'top_k[0]=1', '__proto__=1', '__proto__[top_k]=1', 'constructor[prototype][x]=1',
  'top_k=%E0%A4%A', 'top_k==3', '=3', 'top%5Fk=2', 'top_k=1;top_k=2', 'top_k=%2B3', 'top_k=+3', '?top_k=2', 'top_k',
]
const rawChars = fc.constantFrom(...'abcxyz0123456789_=&%+.-[];:,!*()~$@/?\''.split(''))

export const queryArb = (t: FuzzTarget): fc.Arbitrary<QueryParts> =>
  fc.record(
    {
      topK: fc.oneof(
        { weight: 2, arbitrary: fc.constant(undefined) },
        { weight: 2, arbitrary: topKText(t).map((v) => [v]) },
        { weight: 1, arbitrary: fc.array(topKText(t), { minLength: 2, maxLength: 3 }) },
      ),
      extras: fc.array(fc.tuple(fc.stringMatching(/^x_[a-z0-9]{0,6}$/), fc.string({ unit: 'grapheme', maxLength: 10 })), { maxLength: 3 }),
      raw: fc.oneof(
        { weight: 8, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.oneof(fc.constantFrom(...RAW_QUERIES), fc.string({ unit: rawChars, maxLength: 30 })) },
      ),
    },
    { requiredKeys: ['extras'] },
  )

export function queryText(q: QueryParts): string {
  const parts = q.extras.map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
  for (const v of q.topK ?? []) parts.push(`top_k=${encodeURIComponent(v)}`)
  if (q.raw !== undefined) parts.push(q.raw)
  return parts.length > 0 ? `?${parts.join('&')}` : ''
}

const PATHS = ['/predict/', '/Predict', '//predict', '/predict/x', '/predict%20', '/predict.json']
const pathArb = fc.oneof({ weight: 30, arbitrary: fc.constant('/predict') }, { weight: 1, arbitrary: fc.constantFrom(...PATHS) })

// ---------------------------------------------------------------------------------------------------------------
// Bodies

/** Ordinary feature values; the edges of float32 are planted separately (one in a row is enough to matter). */
const featureNumber = fc.oneof({ weight: 4, arbitrary: fc.double({ min: -8, max: 8, noNaN: true }) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) })
const edgeNumber = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-0, 5e-324, 1.4e-45, 1e-38, 1e20, 1e36, 1e37, 3.4e38, -3.4e38, 3.5e38, 1e39, 1.7e308),
)

const oddValue = fc.oneof(
  fc.constantFrom(null, true, false, '', '1', '1.5', 'NaN', 'Infinity', '\u0000', '\ud83d\ude00', [], {}, [[]], [1], { a: 1 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
  fc.jsonValue({ maxDepth: 2 }),
)

/** A JSON body as a list of entries (keys may repeat: JSON.parse keeps the last), serialized by hand. */
type Entries = [string, unknown][]

const rowArb = (t: FuzzTarget) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.array(featureNumber, { minLength: t.featureDim, maxLength: t.featureDim }) },
    { weight: 1, arbitrary: fc.array(featureNumber, { maxLength: t.featureDim + 3 }) },
  )

const instancesArb = (t: FuzzTarget) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.array(rowArb(t), { minLength: 1, maxLength: t.maxInstances }) },
    { weight: 1, arbitrary: fc.array(rowArb(t), { maxLength: t.maxInstances + 3 }) },
  )

const bodyTopK = (t: FuzzTarget) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: t.maxTopK }) },
    { weight: 2, arbitrary: fc.integer({ min: -3, max: t.maxTopK + 3 }) },
    { weight: 1, arbitrary: fc.constantFrom(1.5, 1e20, 2 ** 53 + 2, -0) },
    { weight: 1, arbitrary: oddValue },
  )

/** Value-level damage to a body: nesting, huge arrays, strings and odd values where numbers go, extra keys. */
type Edit =
  | { op: 'nestInstances' | 'nestRow' | 'nestValue'; at: number; depth: number }
  | { op: 'hugeRow' | 'manyRows'; at: number; len: number }
  | { op: 'numberAsString' | 'oddValue' | 'edgeNumber'; at: number; value: unknown }
  | { op: 'extraKey'; key: string; value: unknown }
  | { op: 'dupKey'; key: 'instances' | 'top_k'; value: unknown; first: boolean }

const editArb = (t: FuzzTarget): fc.Arbitrary<Edit> =>
  fc.oneof(
    fc.record({ op: fc.constantFrom('nestInstances' as const, 'nestRow' as const, 'nestValue' as const), at: fc.nat(), depth: fc.integer({ min: 1, max: 40 }) }),
    fc.record({ op: fc.constant('hugeRow' as const), at: fc.nat(), len: fc.integer({ min: t.featureDim + 1, max: 20_000 }) }),
    fc.record({ op: fc.constant('manyRows' as const), at: fc.nat(), len: fc.integer({ min: t.maxInstances + 1, max: 2_000 }) }),
    fc.record({ op: fc.constantFrom('numberAsString' as const, 'oddValue' as const), at: fc.nat(), value: oddValue }),
    fc.record({ op: fc.constant('edgeNumber' as const), at: fc.nat(), value: edgeNumber }),
    fc.record({ op: fc.constant('extraKey' as const), key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('topk', 'top-k', 'Instances', 'features')), value: oddValue }),
    fc.record({ op: fc.constant('dupKey' as const), key: fc.constantFrom('instances' as const, 'top_k' as const), value: fc.oneof(oddValue, instancesArb(t), bodyTopK(t)), first: fc.boolean() }),
  )

const wrap = (v: unknown, depth: number): unknown => {
  let out = v
  for (let i = 0; i < depth; i++) out = [out]
  return out
}

function applyEdit(entries: Entries, e: Edit, t: FuzzTarget): Entries {
  const inst = entries.find(([k]) => k === 'instances')
  const rows = Array.isArray(inst?.[1]) ? (inst[1] as unknown[]) : undefined
  const rowAt = (at: number) => (rows && rows.length > 0 ? at % rows.length : undefined)
  switch (e.op) {
    case 'nestInstances':
      if (inst) inst[1] = wrap(inst[1], e.depth)
      break
    case 'nestRow': {
      const i = rowAt(e.at)
      if (rows && i !== undefined) rows[i] = wrap(rows[i], e.depth)
      break
    }
    case 'nestValue':
    case 'numberAsString':
    case 'oddValue':
    case 'edgeNumber': {
      const i = rowAt(e.at)
      const row = rows && i !== undefined ? rows[i] : undefined
      if (Array.isArray(row) && row.length > 0) {
        const j = Math.floor(e.at / (rows?.length ?? 1)) % row.length
        if ('depth' in e) row[j] = wrap(row[j], e.depth)
        else row[j] = e.op === 'numberAsString' ? String(row[j]) : structuredClone(e.value)
      }
      break
    }
    case 'hugeRow': {
      const i = rowAt(e.at)
      if (rows && i !== undefined) rows[i] = Array.from({ length: e.len }, (_, j) => (j % 7) / 7)
      break
    }
    case 'manyRows':
      if (inst) inst[1] = Array.from({ length: e.len }, () => Array.from({ length: t.featureDim }, () => 0.25))
      break
    case 'extraKey':
      entries.push([e.key, structuredClone(e.value)])
      break
    case 'dupKey':
      if (e.first) entries.unshift([e.key, structuredClone(e.value)])
      else entries.push([e.key, structuredClone(e.value)])
      break
  }
  return entries
}

const serialize = (entries: Entries, space: string): string =>
  `{${space}${entries.map(([k, v]) => `${JSON.stringify(k)}:${space}${JSON.stringify(v) ?? 'null'}`).join(`,${space}`)}${space}}`

/** Well-formed JSON bodies, most of them valid, some with value-level damage. */
export const jsonBodyArb = (t: FuzzTarget): fc.Arbitrary<string> =>
  fc
    .record({
      instances: fc.option(instancesArb(t), { nil: undefined, freq: 30 }),
      topK: fc.option(bodyTopK(t), { nil: undefined, freq: 2 }),
      topKFirst: fc.boolean(),
      edits: fc.oneof({ weight: 2, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(editArb(t), { minLength: 1, maxLength: 3 }) }),
      space: fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n  '),
    })
    .map(({ instances, topK, topKFirst, edits, space }) => {
      // Edits work in place: on copies, since fast-check may hand the same values out again while shrinking.
      let entries: Entries = []
      if (instances !== undefined) entries.push(['instances', structuredClone(instances)])
      if (topK !== undefined) entries[topKFirst ? 'unshift' : 'push'](['top_k', topK])
      for (const e of edits) entries = applyEdit(entries, e, t)
      return serialize(entries, space)
    })

/** Text-level damage: bytes flipped, cut, repeated; odd tokens; numbers replaced; values nested very deep. */
type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; byte: number }
  | { op: 'truncate'; at: number }
  | { op: 'delete' | 'duplicate'; at: number; len: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'replaceNumber'; which: number; text: string }
  | { op: 'deep'; which: number; depth: number; closed: boolean }

const TOKENS = [
  'NaN', '-NaN', 'Infinity', '-Infinity', 'undefined', 'null', 'true', 'false', '1e999', '-1e999', '1e-999', '-0', '0x10',
  '01', '.5', '5.', '+1', '1.0', '1e0', '"1"', '""', '[]', '{}', '[[]]', '"NaN"', ',', ':', '"', '\\', '\\u0000', '\u0000',
  '\ud800', '\ud83d\ude00', '\u00e9', '\u2028', '\ufeff', '1'.repeat(400), `${'9'.repeat(400)}e9`, '-', 'e5', '1e', '0.',
  '{"__proto__":{"top_k":3}}', '{"constructor":{"prototype":{"x":1}}}', '"top_k":5,', '"instances":[],', '/*c*/', '//',
]

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('delete' as const, 'duplicate' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ unit: 'binary', maxLength: 6 })) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('replaceNumber' as const), which: fc.nat(), text: fc.oneof(fc.constantFrom(...TOKENS), fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => JSON.stringify(s))) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deep' as const), which: fc.oneof(fc.nat(), fc.constant(-1)), depth: fc.oneof(fc.integer({ min: 2, max: 200 }), fc.integer({ min: 1_000, max: 60_000 })), closed: fc.boolean() }) },
)

const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g

function mutate(buf: Buffer, m: Mutation): Buffer {
  const at = (n: number) => n % (buf.length + 1)
  switch (m.op) {
    case 'flip': {
      if (buf.length === 0) return buf
      const out = Buffer.from(buf)
      const i = m.at % buf.length
      out[i] = out[i]! ^ (1 << m.bit)
      return out
    }
    case 'set': {
      if (buf.length === 0) return buf
      const out = Buffer.from(buf)
      out[m.at % buf.length] = m.byte
      return out
    }
    case 'truncate':
      return buf.subarray(0, at(m.at))
    case 'delete': {
      const i = at(m.at)
      return Buffer.concat([buf.subarray(0, i), buf.subarray(i + m.len)])
    }
    case 'duplicate': {
      const i = at(m.at)
      return Buffer.concat([buf.subarray(0, i + m.len), buf.subarray(i)])
    }
    case 'insert': {
      const i = at(m.at)
      return Buffer.concat([buf.subarray(0, i), Buffer.from(m.text), buf.subarray(i)])
    }
    case 'replaceNumber':
    case 'deep': {
      const text = buf.toString('latin1') // byte-exact round trip
      const hits = [...text.matchAll(NUMBER)]
      if (hits.length === 0) return buf
      const hit = hits[m.which < 0 ? hits.length - 1 : m.which % hits.length]! // -1: the last one, often top_k
      const by = m.op === 'replaceNumber' ? Buffer.from(m.text).toString('latin1') : '['.repeat(m.depth) + (m.closed ? ']'.repeat(m.depth) : '')
      return Buffer.from(text.slice(0, hit.index) + by + text.slice(hit.index + hit[0].length), 'latin1')
    }
  }
}

const mutationsArb = (min: number) => fc.array(mutationArb, { minLength: min, maxLength: 4 })

/** Float32 rows as little-endian bytes, with chosen floats planted (NaN payloads, infinities, edges). */
const SPECIAL_BITS = [0x7fc00000, 0xffc00000, 0x7f800001, 0x7f800000, 0xff800000, 0x80000000, 0x00000001, 0x7f7fffff, 0xff7fffff, 0xffffffff, 0x7e967699]

const binaryBodyArb = (t: FuzzTarget): fc.Arbitrary<Buffer> => {
  const d = t.featureDim
  const rowsBytes = fc
    .tuple(
      fc.integer({ min: 1, max: t.maxInstances + 2 }),
      fc.array(featureNumber, { minLength: d * (t.maxInstances + 2), maxLength: d * (t.maxInstances + 2) }),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...SPECIAL_BITS).map((bits) => ({ bits })), edgeNumber.map((value) => ({ value })))), { minLength: 1, maxLength: 2 }) },
      ),
    )
    .map(([n, values, specials]) => {
      const buf = Buffer.from(new Float32Array(values.slice(0, n * d)).buffer)
      for (const [at, v] of specials) {
        if ('bits' in v) buf.writeUInt32LE(v.bits >>> 0, 4 * (at % (n * d)))
        else buf.writeFloatLE(v.value, 4 * (at % (n * d)))
      }
      return buf
    })
  return fc.oneof(
    { weight: 10, arbitrary: rowsBytes },
    { weight: 4, arbitrary: fc.tuple(rowsBytes, mutationsArb(1)).map(([b, ms]) => ms.reduce(mutate, b)) },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 4 * d * (t.maxInstances + 2) + 7 }).map((a) => Buffer.from(a)) },
    // Lengths at and next to every multiple of 4·d that matters.
    { weight: 3, arbitrary: fc.tuple(fc.integer({ min: 0, max: t.maxInstances + 2 }), fc.integer({ min: -3, max: 3 })).map(([n, off]) => Buffer.alloc(Math.max(0, 4 * d * n + off), 0x3e)) },
    // Past the body limit (a few: each one is a large allocation).
    { weight: 1, arbitrary: fc.integer({ min: t.bodyLimit - 8, max: t.bodyLimit + 64 }).map((n) => Buffer.alloc(n, 0x3f)) },
  )
}

const randomBodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
  fc.string({ unit: 'binary', maxLength: 200 }).map((s) => Buffer.from(s)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? '')),
  fc.constant(Buffer.alloc(0)),
)

const build = (family: string, path: string, q: QueryParts, contentType: string | string[] | undefined, payload: Buffer): FuzzRequest => ({
  family,
  path: path + queryText(q),
  contentType,
  payload,
})

/** The request families: well-formed JSON, damaged JSON, binary float32, anything at all. */
export function familyArbs(t: FuzzTarget): Record<'json' | 'json-mutated' | 'binary' | 'random', fc.Arbitrary<FuzzRequest>> {
  const q = queryArb(t)
  return {
    json: fc.tuple(pathArb, q, contentTypeArb('json'), jsonBodyArb(t)).map(([p, qs, ct, body]) => build('json', p, qs, ct, Buffer.from(body))),
    'json-mutated': fc
      .tuple(pathArb, q, contentTypeArb('json'), jsonBodyArb(t), mutationsArb(1))
      .map(([p, qs, ct, body, ms]) => build('json-mutated', p, qs, ct, ms.reduce(mutate, Buffer.from(body)))),
    binary: fc.tuple(pathArb, q, contentTypeArb('binary'), binaryBodyArb(t)).map(([p, qs, ct, body]) => build('binary', p, qs, ct, body)),
    random: fc.tuple(pathArb, q, contentTypeArb('any'), randomBodyArb).map(([p, qs, ct, body]) => build('random', p, qs, ct, body)),
  }
}

/** All families in one stream, weighted towards the ones that reach deepest into the service. */
export function requestArb(t: FuzzTarget): fc.Arbitrary<FuzzRequest> {
  const f = familyArbs(t)
  return fc.oneof(
    { weight: 4, arbitrary: f.json },
    { weight: 4, arbitrary: f['json-mutated'] },
    { weight: 3, arbitrary: f.binary },
    { weight: 1, arbitrary: f.random },
  )
}

// ---------------------------------------------------------------------------------------------------------------
// The oracle: what the documented interface says the answer must be, from the request alone

/** Past this magnitude a feature may overflow float32 inside the model (400 MHE_BAD_INSTANCE is then fine too). */
const OVERFLOW_RISK = 1e36

/**
 * The query's top_k values; 'unknown' where query parsers may differ ('+', brackets, bad escapes, __proto__, empty
 * keys); 'refused' when it has another parameter (the service names it in a 400).
 */
function queryTopKs(path: string): string[] | 'unknown' | 'refused' {
  const values: string[] = []
  let unknownKey = false
  for (const part of (path.split('?')[1] ?? '').split('&')) {
    if (part === '') continue
    if (/[+[\]]/.test(part)) return 'unknown'
    const [key, value] = [part.split('=')[0]!, part.slice(part.indexOf('=') + 1)].map((x) => {
      try {
        return decodeURIComponent(x)
      } catch {
        return undefined
      }
    })
    if (key === undefined || value === undefined || key === '' || key === '__proto__' || key === 'constructor') return 'unknown'
    if (key !== 'top_k') unknownKey = true
    else values.push(part.includes('=') ? value : '')
  }
  return unknownKey ? 'refused' : values
}

/** A top_k, from the query (its text coerced as a number) or the body: the schema's, at most the configured maximum. */
const topKOk = (t: FuzzTarget, k: unknown): boolean => Value.Check(TopKQuery.properties.top_k, k) && (k as number) <= t.maxTopK

function contentKind(ct: string | string[] | undefined): 'json' | 'binary' | 'unsupported' | 'unknown' {
  if (ct === undefined) return 'unsupported'
  if (Array.isArray(ct)) return 'unknown'
  if (JSON_TYPES.includes(ct)) return 'json'
  if (BINARY_TYPES.includes(ct)) return 'binary'
  if (UNSUPPORTED_TYPES.includes(ct)) return 'unsupported'
  return 'unknown'
}

const rejectAs = (e: ServiceError): Expectation => ({ kind: 'reject', as: { statusCode: e.statusCode, code: e.code } })

export function expectationOf(t: FuzzTarget, req: FuzzRequest): Expectation {
  // Fastify parses the body even for a route it then cannot find: a 404 or whatever the body earns.
  if (req.path.split('?')[0] !== '/predict') return { kind: 'reject' }
  const kind = contentKind(req.contentType)
  if (kind === 'unknown') return { kind: 'any' }
  // Without a body Fastify skips parsing, so a bad query may be reported first.
  if (kind === 'unsupported') return req.payload.length === 0 ? { kind: 'reject' } : rejectAs(errors.unsupportedMediaType(undefined))
  if (req.payload.length > t.bodyLimit) return rejectAs(errors.bodyTooLarge(t.bodyLimit))
  const queryKs = queryTopKs(req.path)
  if (queryKs === 'unknown') return { kind: 'any' }
  if (queryKs === 'refused') return { kind: 'reject' }
  const queryK = queryKs.length === 0 ? undefined : queryKs.length === 1 && queryKs[0] !== '' ? Number(queryKs[0]) : NaN
  const reject: Expectation = { kind: 'reject' }
  if (queryK !== undefined && !topKOk(t, queryK)) return reject

  let rows: ArrayLike<number>[]
  let bodyK: unknown
  if (kind === 'binary') {
    const b = req.payload
    if (b.length === 0 || b.length % (4 * t.featureDim) !== 0) return reject
    const values = new Float32Array(new Uint8Array(b).buffer)
    rows = Array.from({ length: values.length / t.featureDim }, (_, i) => values.subarray(i * t.featureDim, (i + 1) * t.featureDim))
  } else {
    let text = req.payload.toString('utf8')
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    // Prototype-poisoning keys are refused by Fastify's parser, which JSON.parse does not model.
    if (/__proto__|constructor/.test(text)) return { kind: 'any' }
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch {
      return reject
    }
    if (!Value.Check(PredictJsonBody, body)) return reject
    if (body.top_k !== undefined && !topKOk(t, body.top_k)) return reject
    if (body.top_k !== undefined && queryK !== undefined) return reject // given twice: neither wins
    rows = body.instances
    bodyK = body.top_k
  }
  if (rows.length === 0 || rows.length > t.maxInstances) return reject
  let maxAbs = 0
  for (const row of rows) {
    if (row.length !== t.featureDim) return reject
    for (let j = 0; j < row.length; j++) {
      if (!Number.isFinite(Math.fround(row[j]!))) return reject
      maxAbs = Math.max(maxAbs, Math.abs(row[j]!))
    }
  }
  return { kind: 'ok', n: rows.length, k: (bodyK as number | undefined) ?? queryK ?? 1, mayOverflow: maxAbs > OVERFLOW_RISK }
}

// ---------------------------------------------------------------------------------------------------------------
// The checks

const firstError = (schema: TSchema, value: unknown): string => {
  const e = Value.Errors(schema, value)[0]
  return e ? `${e.instancePath || '/'} ${e.message}` : 'no error'
}

function checkOk(t: FuzzTarget, body: unknown, n: number | undefined, k: number | undefined): string | undefined {
  if (!Value.Check(PredictResponse, body)) return `200 body does not match PredictResponse: ${firstError(PredictResponse, body)}`
  const preds = body.predictions
  if (preds.length === 0 || preds.length > t.maxInstances) return `predictions is not 1..${t.maxInstances} items`
  if (n !== undefined && preds.length !== n) return `${preds.length} predictions for ${n} instances`
  const wantLen = k === undefined ? preds[0]!.top_k.length : Math.min(k, t.numLabels)
  for (const [i, p] of preds.entries()) {
    for (const [j, c] of [p, ...p.top_k].entries()) {
      const where = j === 0 ? `prediction ${i}` : `prediction ${i} top_k[${j - 1}]`
      if (c.label_id < 0 || c.label_id >= t.numLabels) return `${where}: label_id ${c.label_id} is not in [0, ${t.numLabels})`
      if (c.label !== t.labels[c.label_id]) return `${where}: label ${JSON.stringify(c.label)} does not name label ${c.label_id}`
      if (!(c.score >= 0 && c.score <= 1 + 1e-6)) return `${where}: score ${c.score} is not a probability`
    }
    const ids = p.head_ids
    if (ids.length !== t.heads.length || ids.some((y, h) => y < 0 || y >= t.heads[h]!)) {
      return `prediction ${i}: head_ids ${JSON.stringify(ids)} do not fit heads ${t.heads.join('x')}`
    }
    if (compose(ids, t.heads) !== p.label_id) return `prediction ${i}: head_ids do not compose to label_id`
    const top = p.top_k
    if (top.length !== wantLen) return `prediction ${i}: top_k has ${top.length} entries, expected ${wantLen}`
    if (top.length < 1 || top.length > Math.min(t.maxTopK, t.numLabels)) return `prediction ${i}: top_k has ${top.length} entries`
    if (new Set(top.map((c) => c.label_id)).size !== top.length) return `prediction ${i}: a label twice in top_k`
    if (top.some((c, j) => j > 0 && c.score > top[j - 1]!.score)) return `prediction ${i}: top_k not sorted by score`
    if (top[0]!.label_id !== p.label_id || top[0]!.score !== p.score || top[0]!.label !== p.label) return `prediction ${i}: top_k[0] is not the prediction`
  }
  return undefined
}

/** Returns why the response breaks a property, or undefined when it is fine. */
export function checkResponse(t: FuzzTarget, req: FuzzRequest, res: FuzzResponse): string | undefined {
  const exp = expectationOf(t, req)
  const s = res.statusCode
  if (s >= 500) return `status ${s} (never a 5xx here): ${res.body.slice(0, 300)}`
  let body: unknown
  try {
    body = JSON.parse(res.body)
  } catch {
    return `status ${s} with a body that is not JSON: ${res.body.slice(0, 200)}`
  }
  if (s === 200) {
    if (exp.kind === 'reject') return `200 for a request the interface says is invalid (${exp.as?.statusCode ?? '4xx'} expected)`
    return exp.kind === 'ok' ? checkOk(t, body, exp.n, exp.k) : checkOk(t, body, undefined, undefined)
  }
  if (s < 400) return `status ${s}`
  if (!Value.Check(ErrorBody, body)) return `error body does not match ErrorBody: ${firstError(ErrorBody, body)}`
  const keys = Object.keys(body).sort().join()
  if (keys !== Object.keys(ErrorBody.properties).sort().join()) return `error body keys ${keys} are not those of ErrorBody`
  if (body.statusCode !== s) return `error body statusCode ${body.statusCode} != HTTP status ${s}`
  if (!Object.hasOwn(ERROR_CODES, body.code)) return `error code ${body.code} is not in ERROR_CODES`
  if (body.error !== STATUS_CODES[s]) return `error text ${body.error} is not "${STATUS_CODES[s]}"`
  if (body.message.length === 0 || body.message.length > 2000) return 'message empty or longer than 2000 characters'
  if (/\n\s+at |node_modules|\/src\//.test(body.message)) return `message leaks internals: ${body.message.slice(0, 200)}`
  if (exp.kind === 'ok') {
    if (exp.mayOverflow && s === 400 && body.code === 'MHE_BAD_INSTANCE') return undefined
    return `${s} ${body.code} for a valid request: ${body.message}`
  }
  if (exp.kind === 'reject' && exp.as && (s !== exp.as.statusCode || body.code !== exp.as.code)) {
    return `${s} ${body.code}, expected ${exp.as.statusCode} ${exp.as.code}: ${body.message}`
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------------------------
// Sending

export class HangError extends Error {}

/** `p`, or a HangError after `ms`: only a request that never settles trips it, not a slow machine. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`no answer within ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([p, hang]).finally(() => clearTimeout(timer))
}

export const describe = (req: FuzzRequest): string => {
  const body = req.payload.length > 300 ? `${req.payload.length} bytes, starting ${JSON.stringify(req.payload.subarray(0, 120).toString('latin1'))}` : JSON.stringify(req.payload.toString('latin1'))
  return `POST ${req.path} content-type=${JSON.stringify(req.contentType)} body=${body}`
}

export async function sendInject(app: FastifyInstance, req: FuzzRequest, timeoutMs: number): Promise<FuzzResponse> {
  const headers: Record<string, string | string[]> = {}
  if (req.contentType !== undefined) headers['content-type'] = req.contentType
  const res = await withTimeout(app.inject({ method: 'POST', url: req.path, headers, payload: req.payload }), timeoutMs, describe(req))
  return { statusCode: res.statusCode, body: res.body }
}
