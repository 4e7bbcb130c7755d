// Lint setup: typescript-eslint's recommended rules over our TypeScript sources, plus the import directions of
// the layers in src/ (README "Architecture"): each folder may import only what its row below allows.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const pkg = (names, why) => ({ regex: `^(${names.join('|')})(/|$)`, message: why })
const layer = (names, why) => ({ regex: `^\\.\\.?/(\\.\\./)*(${names.join('|')})/`, message: why })

const FASTIFY = pkg(['fastify', '@fastify/[^/]+', 'fastify-plugin', 'typebox'], 'Fastify and its schemas belong to src/http/.')
const TFJS = pkg(['@tensorflow/[^/]+'], 'TensorFlow.js belongs to src/engine/.')
const TOOLS = { regex: '^(\\.\\./)+(tools|test|bench)/', message: 'The server never imports offline tools, tests or benches.' }

/** One block per layer: the files it covers and the imports it must not use. */
const layers = [
  { files: ['src/mhe/**'], patterns: [{ regex: '^(?!\\./)', message: 'src/mhe/ is pure math: it imports nothing.' }] },
  { files: ['src/bundle/**'], patterns: [FASTIFY, TFJS, TOOLS, layer(['http', 'serving', 'engine'], 'src/bundle/ reads files; it knows no layer above it.')] },
  { files: ['src/engine/**'], patterns: [FASTIFY, TOOLS, layer(['http', 'serving'], 'src/engine/ runs models; it knows nothing of HTTP or the service.')] },
  { files: ['src/serving/**'], patterns: [FASTIFY, TFJS, TOOLS, layer(['http'], 'src/serving/ knows nothing of HTTP.')] },
  { files: ['src/http/**'], patterns: [TFJS, TOOLS, layer(['engine', 'bundle'], 'src/http/ talks to the model through src/serving/.')] },
  { files: ['src/*.ts'], patterns: [TFJS, TOOLS] },
]

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', 'test/fixtures/**', 'bench/results/**', '.ab/**', '.gpu/**', '**/tmp/**', 'test/clients/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  ...layers.map(({ files, patterns }) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns }] } })),
)
