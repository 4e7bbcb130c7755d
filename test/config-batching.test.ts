// Batching settings by backend: MHE_MAX_BATCH and MHE_MAX_DELAY_MS default to 'auto', resolved once the backend is
// known (config.ts batchingFor); explicit values win.
import t from 'tap'
import { batchingFor, ConfigError, loadConfig } from '../src/config.js'

t.test("'auto' by default, resolved per backend", async (t) => {
  const c = loadConfig({})
  t.equal(c.maxBatch, 'auto')
  t.equal(c.maxDelayMs, 'auto')
  t.strictSame(batchingFor(c, false), { maxBatch: 256, maxDelayMs: 0 }, 'CPU backends: as before')
  t.strictSame(batchingFor(c, true), { maxBatch: 1024, maxDelayMs: 1 }, 'GPU backends: larger batches, 1 ms wait')
})

t.test('explicit values win on every backend', async (t) => {
  const c = loadConfig({ MHE_MAX_BATCH: '64', MHE_MAX_DELAY_MS: '3' })
  t.strictSame(batchingFor(c, false), { maxBatch: 64, maxDelayMs: 3 })
  t.strictSame(batchingFor(c, true), { maxBatch: 64, maxDelayMs: 3 })
  const mixed = loadConfig({ MHE_MAX_DELAY_MS: '0' }, ['--max-batch', 'auto'])
  t.strictSame(batchingFor(mixed, true), { maxBatch: 1024, maxDelayMs: 0 })
})

t.test("an 'auto' batch never exceeds the queue", async (t) => {
  const c = loadConfig({ MHE_MAX_QUEUE: '512' })
  t.strictSame(batchingFor(c, true), { maxBatch: 512, maxDelayMs: 1 })
  t.strictSame(batchingFor(c, false), { maxBatch: 256, maxDelayMs: 0 })
  t.throws(() => loadConfig({ MHE_MAX_QUEUE: '512', MHE_MAX_BATCH: '1024' }), /MHE_MAX_QUEUE \(512\) must be at least MHE_MAX_BATCH \(1024\)/)
})

t.test('bad values name the setting and say auto is allowed', async (t) => {
  t.throws(() => loadConfig({ MHE_MAX_BATCH: 'big' }), new ConfigError('MHE_MAX_BATCH must be an integer >= 1 or auto, got "big"'))
  t.throws(() => loadConfig({ MHE_MAX_BATCH: '0' }), /MHE_MAX_BATCH must be an integer >= 1 or auto/)
  t.throws(() => loadConfig({}, ['--max-delay-ms=soon']), /--max-delay-ms must be an integer >= 0 or auto, got "soon"/)
  t.throws(() => loadConfig({ MHE_MAX_QUEUE: 'auto' }), /MHE_MAX_QUEUE must be an integer >= 1, got "auto"/, 'only the batching settings take auto')
})

t.test('webgpu is a backend name', async (t) => {
  t.equal(loadConfig({ MHE_BACKEND: 'webgpu' }).backend, 'webgpu')
  t.throws(() => loadConfig({ MHE_BACKEND: 'gpu' }), /MHE_BACKEND must be one of auto, tensorflow, webgpu, wasm, cpu, got "gpu"/)
})
