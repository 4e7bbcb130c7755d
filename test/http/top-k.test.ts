// The top_k rule in one place: default, range against the setting, and which schema failures are about it.
import t from 'tap'
import { parseTopK, topKField, topKSchemaError, TOP_K_DEFAULT } from '../../src/http/top-k.js'
import { ServiceError } from '../../src/errors.js'

t.test('parseTopK: the default when absent, k from 1 to max, MHE_BAD_TOP_K otherwise', async (t) => {
  t.equal(parseTopK(undefined, 5), TOP_K_DEFAULT)
  t.equal(TOP_K_DEFAULT, 1)
  t.equal(parseTopK(1, 5), 1)
  t.equal(parseTopK(5, 5), 5)
  for (const bad of [0, -1, 6, 2.5, NaN]) {
    t.throws(() => parseTopK(bad, 5), { code: 'MHE_BAD_TOP_K', message: /from 1 to 5/ }, `${bad} refused`)
  }
})

t.test('the schema carries the lower bound; the upper one is a setting', async (t) => {
  t.match(topKField('k'), { type: 'integer', minimum: 1, description: 'k' })
  t.notOk('maximum' in topKField('k'))
})

t.test('topKSchemaError answers for top_k only', async (t) => {
  const e = topKSchemaError('/top_k', '3', 50)
  t.ok(e instanceof ServiceError)
  t.equal(e?.message, 'top_k must be an integer from 1 to 50, got "3"')
  t.equal(topKSchemaError('/instances/0', 'x', 50), undefined)
  t.equal(topKSchemaError('', {}, 50), undefined)
})
