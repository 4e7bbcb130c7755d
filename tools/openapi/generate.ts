// Builds the OpenAPI document from the real app's route schemas. The document does not depend on the model, so a
// throw-away two-label bundle is enough to build the app.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { buildApp } from '../../src/http/app.js'
import { loadConfig } from '../../src/config.js'
import { writeBundle } from '../bundle/write.js'
import { selectBackend } from '../../src/engine/backend.js'

export async function generateOpenApi(): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'mhe-openapi-'))
  try {
    await selectBackend('cpu', { info: () => {}, warn: () => {} })
    const input = tf.input({ shape: [2] })
    const output = tf.layers.dense({ units: 4, kernelInitializer: 'zeros' }).apply(input) as tf.SymbolicTensor
    const model = tf.model({ inputs: input, outputs: output })
    await writeBundle(dir, {
      manifest: { name: 'openapi', version: '0', featureDim: 2, heads: [2, 2], numLabels: 4, outputs: 'logits' },
      model,
      labels: ['a', 'b', 'c', 'd'],
    })
    model.dispose()
    // The document needs no engine thread (and a .ts worker would need a loader, tools/lib/ts-workers.ts).
    const app = await buildApp(loadConfig({ MHE_MODEL: dir, MHE_BACKEND: 'cpu', MHE_ENGINE_THREAD: 'false' }), { logger: false })
    try {
      return app.swagger() as unknown as Record<string, unknown>
    } finally {
      await app.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
