// The Open Inference Protocol's tensors on the wire: an inference body split into its JSON and the binary tensor
// extension's bytes, the features input read from either, and output tensors written as JSON data or binary data.
// Pure functions (no Fastify, no model), so each wire rule is tested alone.

import { errors } from '../errors.js'

/** The name, datatype and shape of the one input, as model metadata reports it. */
export const INPUT_NAME = 'features'

/** An inference body: its JSON part parsed, and the bytes after it (empty without the binary extension). */
export interface InferBody {
  json: unknown
  binary: Buffer
}

/**
 * Splits a body by the Inference-Header-Content-Length header (binary tensor extension): the first that many bytes
 * are the JSON request, the rest the inputs' binary data in input order. Without the header the body is all JSON.
 */
export function splitInferBody(body: Buffer, headerLength: string | string[] | undefined): InferBody {
  let jsonLength = body.length
  if (headerLength !== undefined) {
    const raw = Array.isArray(headerLength) ? headerLength.join(',') : headerLength
    const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN
    if (!Number.isSafeInteger(value) || value > body.length) {
      throw errors.badRequest(`Inference-Header-Content-Length must be an integer from 0 to the body length ${body.length}, got ${JSON.stringify(raw)}`)
    }
    jsonLength = value
  }
  if (jsonLength === 0) throw errors.badRequest('expected a JSON inference request with "inputs", got an empty body')
  let json: unknown
  try {
    json = JSON.parse(body.subarray(0, jsonLength).toString('utf8'))
  } catch (err) {
    throw errors.malformedJson((err as Error).message)
  }
  return { json, binary: body.subarray(jsonLength) }
}

export interface RequestInput {
  name: string
  shape: number[]
  datatype: string
  parameters?: { binary_data_size?: number }
  data?: unknown[]
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(', ')}]`

/** Where a value is, for messages: "instance 2 value 5" (row-major index into [n, d]). */
const at = (j: number, d: number): string => `instance ${Math.floor(j / d)} value ${j % d}`

/** JSON data, flat ([n*d] numbers) or nested ([n][d]), row-major into `out`. */
function readJsonData(data: unknown[], out: Float32Array, n: number, d: number): void {
  const nested = data.length > 0 && Array.isArray(data[0])
  if (nested) {
    if (data.length !== n) throw errors.badInstance(`input "${INPUT_NAME}" has ${data.length} rows of data, its shape [${n}, ${d}] needs ${n}`)
    for (let i = 0; i < n; i++) {
      const row = data[i]
      if (!Array.isArray(row)) throw errors.badInstance(`input "${INPUT_NAME}" data row ${i} is not an array, expected ${d} numbers (data is flat or nested [n][d])`)
      // The same words as /predict for an instance of the wrong length.
      if (row.length !== d) throw errors.badInstance(`instance ${i} has ${row.length} values, the model expects ${d}`)
      for (let j = 0; j < d; j++) out[i * d + j] = numberAt(row[j], i * d + j, d)
    }
    return
  }
  if (data.length !== n * d) {
    throw errors.badInstance(`input "${INPUT_NAME}" has ${data.length} values, its shape [${n}, ${d}] needs ${n * d}`)
  }
  for (let j = 0; j < data.length; j++) out[j] = numberAt(data[j], j, d)
}

function numberAt(v: unknown, j: number, d: number): number {
  if (typeof v === 'number') return v
  const shown = JSON.stringify(v) ?? String(v)
  throw errors.badInstance(`${at(j, d)} is ${shown.length > 40 ? `${shown.slice(0, 37)}...` : shown}, expected a finite float32 number`)
}

export interface Features {
  features: Float32Array
  n: number
}

/**
 * Reads the request's inputs: exactly one, "features", FP32 of shape [n, d], from JSON data or from the binary part.
 * `one` gives a d-long buffer for a one-instance request (recycled by the service, as /predict does).
 * Finiteness is checked by the caller, with /predict's own check.
 */
export function readFeatures(
  inputs: readonly RequestInput[],
  binary: Buffer,
  d: number,
  maxInstances: number,
  one: () => Float32Array,
): Features {
  const expected = `one input "${INPUT_NAME}", FP32 [-1, ${d}]`
  let found: Features | undefined
  let offset = 0
  for (const input of inputs) {
    if (input.name !== INPUT_NAME) throw errors.badRequest(`unknown input "${input.name}": the model takes ${expected}`)
    if (found) throw errors.badRequest(`input "${INPUT_NAME}" is given twice: the model takes ${expected}`)
    if (input.datatype !== 'FP32') throw errors.badRequest(`input "${INPUT_NAME}" has datatype ${input.datatype}, the model expects FP32`)
    const shape = input.shape
    if (shape.length !== 2 || shape[1] !== d) {
      throw errors.badInstance(`input "${INPUT_NAME}" has shape ${shapeText(shape)}, the model expects [-1, ${d}] (${d} values per instance)`)
    }
    const n = shape[0]!
    if (n === 0) throw errors.emptyBatch()
    const size = input.parameters?.binary_data_size
    if (size !== undefined && input.data !== undefined) {
      throw errors.badRequest(`input "${INPUT_NAME}" has both "data" and a binary_data_size, expected one of them`)
    }
    if (size === undefined && input.data === undefined) {
      throw errors.badRequest(`input "${INPUT_NAME}" has neither "data" nor a binary_data_size, expected one of them`)
    }
    // Before allocating n x d floats.
    if (n > maxInstances) throw errors.tooManyInstances(n, maxInstances)
    const features = n === 1 ? one() : new Float32Array(n * d)
    if (size !== undefined) {
      if (size !== 4 * n * d) {
        throw errors.badInstance(`input "${INPUT_NAME}" has binary_data_size ${size}, its shape [${n}, ${d}] of FP32 needs ${4 * n * d} bytes`)
      }
      if (offset + size > binary.length) {
        throw errors.badRequest(`input "${INPUT_NAME}" has binary_data_size ${size}, but only ${binary.length - offset} bytes follow the JSON`)
      }
      // Copy into an aligned buffer: the body's bytes may start at any offset. Wire format is little-endian.
      new Uint8Array(features.buffer, features.byteOffset, size).set(binary.subarray(offset, offset + size))
      offset += size
    } else {
      readJsonData(input.data!, features, n, d)
    }
    found = { features, n }
  }
  if (!found) throw errors.badRequest(`expected ${expected}, got no inputs`)
  if (offset !== binary.length) {
    throw errors.badRequest(`the body has ${binary.length} bytes after the JSON, the inputs' binary_data_size add up to ${offset}`)
  }
  return found
}

export type Datatype = 'FP32' | 'INT64' | 'BYTES'

/** One output tensor, row-major. */
export interface OutputTensor {
  name: string
  datatype: Datatype
  shape: number[]
  data: ArrayLike<number> | readonly string[]
  /** Sent as binary data after the JSON instead of as JSON data. */
  binary: boolean
}

/** A tensor's bytes as the binary tensor extension defines them: little-endian, BYTES as 4-byte length + bytes. */
export function tensorBytes(t: OutputTensor): Buffer {
  if (t.datatype === 'BYTES') {
    const parts = (t.data as readonly string[]).map((s) => Buffer.from(s, 'utf8'))
    const out = Buffer.allocUnsafe(parts.reduce((a, p) => a + 4 + p.length, 0))
    let o = 0
    for (const p of parts) {
      out.writeUInt32LE(p.length, o)
      p.copy(out, o + 4)
      o += 4 + p.length
    }
    return out
  }
  const data = t.data as ArrayLike<number>
  if (t.datatype === 'INT64') {
    const out = Buffer.allocUnsafe(8 * data.length)
    for (let i = 0; i < data.length; i++) out.writeBigInt64LE(BigInt(data[i]!), 8 * i)
    return out
  }
  const out = Buffer.allocUnsafe(4 * data.length)
  for (let i = 0; i < data.length; i++) out.writeFloatLE(data[i]!, 4 * i)
  return out
}

/** A tensor's values as JSON data (FP32 values rounded to float32, so JSON and binary answers agree). */
function jsonData(t: OutputTensor): unknown[] {
  if (t.datatype === 'BYTES') return [...(t.data as readonly string[])]
  const data = t.data as ArrayLike<number>
  return t.datatype === 'FP32' ? Array.from(data, Math.fround) : Array.from(data)
}

export type EncodedResponse = { kind: 'json'; body: object } | { kind: 'binary'; body: Buffer; headerLength: number }

/**
 * The inference response: all-JSON when no output is binary, else the JSON (with each binary output's
 * binary_data_size) followed by the binary outputs' bytes in output order.
 */
export function encodeResponse(head: Record<string, unknown>, outputs: readonly OutputTensor[]): EncodedResponse {
  const chunks: Buffer[] = []
  const described = outputs.map((t) => {
    const meta = { name: t.name, datatype: t.datatype, shape: t.shape }
    if (!t.binary) return { ...meta, data: jsonData(t) }
    const bytes = tensorBytes(t)
    chunks.push(bytes)
    return { ...meta, parameters: { binary_data_size: bytes.length } }
  })
  const body = { ...head, outputs: described }
  if (chunks.length === 0) return { kind: 'json', body }
  const json = Buffer.from(JSON.stringify(body), 'utf8')
  return { kind: 'binary', body: Buffer.concat([json, ...chunks]), headerLength: json.length }
}
