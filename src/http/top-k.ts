// The top_k rule, owned here: an integer from 1 to MHE_MAX_TOP_K, 1 when not given. The schemas (and so the
// OpenAPI document), the route and the error handler all take it from this module.

import { Type } from 'typebox'
import { errors, type ServiceError } from '../errors.js'

const MIN = 1
export const TOP_K_DEFAULT = 1

/** A top_k field. Its upper bound is a setting, not part of the published schema: parseTopK checks it. */
export const topKField = (description: string) => Type.Optional(Type.Integer({ description, minimum: MIN }))

/** k from a request that passed the schema: the default when absent, MHE_BAD_TOP_K past `max`. */
export function parseTopK(raw: number | undefined, max: number): number {
  if (raw === undefined) return TOP_K_DEFAULT
  if (!Number.isInteger(raw) || raw < MIN || raw > max) throw errors.badTopK(raw, max)
  return raw
}

/**
 * The answer to a schema failure at `instancePath` (query or body; a V2 infer request's parameters) when it is about
 * top_k; undefined otherwise.
 */
export function topKSchemaError(instancePath: string, got: unknown, max: number): ServiceError | undefined {
  return instancePath === '/top_k' || instancePath === '/parameters/top_k' ? errors.badTopK(got, max) : undefined
}
