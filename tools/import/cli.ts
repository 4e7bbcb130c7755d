// `npm run import -- --safetensors FILE --heads n1,n2,… --num-labels C --labels FILE --out DIR`:
// writes a servable bundle from a PyTorch MHP classifier saved as safetensors. Exit 0 ok, 1 import error, 2 usage.

import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath, pathToFileURL } from 'node:url'
import * as tf from '@tensorflow/tfjs'
import { BundleError } from '../../src/errors.js'
import { ImportError, importSafetensors, type ImportOptions } from './import.js'
import { SafetensorsError } from './safetensors.js'

export const USAGE = `usage: npm run import -- --safetensors FILE --heads n1,n2,... --num-labels C --labels FILE --out DIR
                          [--name NAME] [--version V] [--weight TENSOR --bias TENSOR] [--force]

Reads the PyTorch MHP classifier (nn.Linear(D, n1+...+nH), head 1 most significant) from a safetensors
file (F32, F16 or BF16) and writes a bundle folder for MHE_MODEL=DIR.
  --heads        head sizes n1..nH, comma-separated
  --num-labels   C, the number of labels (<= product of the heads)
  --labels       label names, one per line (line i = label id i), exactly C lines
  --weight/--bias  tensor names of the classifier, when the file holds more than one pair that fits
  --force        write into a non-empty --out folder`

class UsageError extends Error {}

const positiveInt = (flag: string, s: string): number => {
  if (!/^\d+$/.test(s.trim()) || Number(s) < 1 || !Number.isSafeInteger(Number(s))) {
    throw new UsageError(`${flag} expects a positive integer, got ${JSON.stringify(s)}`)
  }
  return Number(s)
}

/**
 * Parses argv (without node and script) into import options; throws UsageError on a bad command line.
 * Relative paths are taken from `cwd`: npm runs scripts in the package root, but sets INIT_CWD to where the
 * user typed `npm run import`, which is what their paths are relative to.
 */
export function parseCli(argv: readonly string[], cwd = process.env.INIT_CWD ?? process.cwd()): ImportOptions | 'help' {
  let values
  try {
    ;({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        safetensors: { type: 'string' }, heads: { type: 'string' }, 'num-labels': { type: 'string' },
        labels: { type: 'string' }, out: { type: 'string' }, name: { type: 'string' }, version: { type: 'string' },
        weight: { type: 'string' }, bias: { type: 'string' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help === true) return 'help'
  for (const flag of ['safetensors', 'heads', 'num-labels', 'labels', 'out'] as const) {
    if (values[flag] === undefined || values[flag] === '') throw new UsageError(`missing --${flag}`)
  }
  return {
    safetensors: resolve(cwd, values.safetensors!),
    heads: values.heads!.split(',').map((s) => positiveInt('--heads', s)),
    numLabels: positiveInt('--num-labels', values['num-labels']!),
    labels: resolve(cwd, values.labels!),
    out: resolve(cwd, values.out!),
    name: values.name,
    version: values.version,
    weight: values.weight,
    bias: values.bias,
    force: values.force,
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  let opts: ImportOptions | 'help'
  try {
    opts = parseCli(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`error: ${err.message}\n\n${USAGE}\n`)
    return 2
  }
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  // An offline tool: silence tfjs's "install the node backend" banner.
  tf.env().set('PROD', true)
  try {
    const { manifest, weight, bias, dtype } = await importSafetensors(opts)
    process.stdout.write(
      `wrote bundle ${opts.out}: name ${manifest.name}, version ${manifest.version}, featureDim ${manifest.featureDim}, ` +
        `heads ${manifest.heads.join(',')}, numLabels ${manifest.numLabels} (from ${weight} + ${bias}, ${dtype})\n` +
        `serve it with: MHE_MODEL=${opts.out} npm start\n`,
    )
    return 0
  } catch (err) {
    if (err instanceof ImportError || err instanceof SafetensorsError || err instanceof BundleError) {
      process.stderr.write(`error: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

/** True when this file is the program being run (argv[1] may be a symlinked path to it). */
function isMain(): boolean {
  const script = process.argv[1]
  if (script === undefined) return false
  try {
    return pathToFileURL(realpathSync(script)).href === pathToFileURL(realpathSync(fileURLToPath(import.meta.url))).href
  } catch {
    return false
  }
}

if (isMain()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (err: unknown) => {
      process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      process.exitCode = 1
    },
  )
}
