// deploy/kubernetes checked without a cluster: every manifest against its API's schema (kubernetes-models for the
// core kinds, @kubernetes-models/keda for KEDA's ScaledObject), every field against its API's types (a TypeScript
// excess-property check, which also covers the KServe kinds through test/helpers/kserve-types.ts), and the facts
// that tie the manifests to the server: probe paths that answer, ports, env names the config knows, a grace period
// derived from the drain settings, the user the image runs as, selectors that match, a metric the server exports.
import t, { type Test } from 'tap'
import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import ts from 'typescript'
import { parseAllDocuments } from 'yaml'
import { Deployment } from 'kubernetes-models/apps/v1'
import { Service, Container, Volume } from 'kubernetes-models/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1'
import { loadConfig, OPTIONS } from '../../src/config.js'
import { shutdownBudgetMs } from '../../src/http/drain.js'
import { testApp, testBundle } from '../helpers/server.js'

const DIR = 'deploy/kubernetes'
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML is checked field by field below
type Any = any

interface Manifest {
  file: string
  doc: Any
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return yamlFiles(path)
    return name.endsWith('.yaml') && name !== 'kustomization.yaml' ? [path] : []
  })
}

function load(): Manifest[] {
  return yamlFiles(DIR).flatMap((file) => {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'))
    return docs.map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]!.message}`)
      return { file, doc: d.toJS() }
    })
  })
}

/** Each kind: its runtime schema check, and the TypeScript type its fields are checked against. */
const KINDS: Record<string, { validate: (doc: Any) => void; type: [module: string, name: string] }> = {
  'apps/v1/Deployment': { validate: (d) => new Deployment(d).validate(), type: ['kubernetes-models/apps/v1/Deployment', 'IDeployment'] },
  'v1/Service': { validate: (d) => new Service(d).validate(), type: ['kubernetes-models/v1/Service', 'IService'] },
  'policy/v1/PodDisruptionBudget': {
    validate: (d) => new PodDisruptionBudget(d).validate(),
    type: ['kubernetes-models/policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'],
  },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    validate: (d) => new HorizontalPodAutoscaler(d).validate(),
    type: ['kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', 'IHorizontalPodAutoscaler'],
  },
  'keda.sh/v1alpha1/ScaledObject': {
    validate: (d) => new ScaledObject(d).validate(),
    type: ['@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', 'IScaledObject'],
  },
  // KServe ships no schema package: its embedded core parts (containers, volumes) go through kubernetes-models, the
  // rest through the types in test/helpers/kserve-types.ts.
  'serving.kserve.io/v1alpha1/ServingRuntime': {
    validate: (d) => {
      if (!Array.isArray(d.spec?.containers) || d.spec.containers.length === 0) throw new Error('spec.containers: at least one container')
      for (const c of d.spec.containers) new Container(c).validate()
      for (const v of d.spec.volumes ?? []) new Volume(v).validate()
    },
    type: ['./kserve-types.js', 'ServingRuntime'],
  },
  'serving.kserve.io/v1beta1/InferenceService': {
    validate: (d) => {
      const model = d.spec?.predictor?.model
      if (!model?.modelFormat?.name) throw new Error('spec.predictor.model.modelFormat.name: required')
      const { modelFormat: _f, runtime: _r, storageUri: _s, runtimeVersion: _v, protocolVersion: _p, ...container } = model
      new Container({ name: 'kserve-container', ...container }).validate()
    },
    type: ['./kserve-types.js', 'InferenceService'],
  },
}

const kindOf = (doc: Any): string => `${doc.apiVersion}/${doc.kind}`

/**
 * Type-checks each document as an object literal of its kind's TypeScript type (in memory, beside
 * test/helpers/ so the imports resolve): wrong types and fields the API does not define are diagnostics.
 * Returns the diagnostics per document, in order.
 */
function typeCheck(docs: Any[]): string[][] {
  const file = resolve('test/helpers/__manifests_check__.ts')
  const lines: string[] = []
  docs.forEach((doc, i) => {
    const [module, name] = KINDS[kindOf(doc)]!.type
    lines.push(`import type { ${name} as T${i} } from '${module}'`)
  })
  // One line per document, so a diagnostic's line says which document it is about.
  const first = lines.length
  docs.forEach((doc, i) => lines.push(`export const m${i}: T${i} = ${JSON.stringify(doc)}`))
  const source = lines.join('\n')
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  }
  const host = ts.createCompilerHost(options)
  const original = { getSourceFile: host.getSourceFile.bind(host), fileExists: host.fileExists.bind(host), readFile: host.readFile.bind(host) }
  host.getSourceFile = (name, lang, ...rest) =>
    resolve(name) === file ? ts.createSourceFile(name, source, lang, true) : original.getSourceFile(name, lang, ...rest)
  host.fileExists = (name) => resolve(name) === file || original.fileExists(name)
  host.readFile = (name) => (resolve(name) === file ? source : original.readFile(name))
  const program = ts.createProgram({ rootNames: [file], options, host })
  const out: string[][] = docs.map(() => [])
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ')
    if (d.file === undefined || resolve(d.file.fileName) !== file || d.start === undefined) {
      out.forEach((o) => o.push(`(global) ${message}`))
      continue
    }
    const i = d.file.getLineAndCharacterOfPosition(d.start).line - first
    out[i]!.push(message)
  }
  return out
}

const manifests = load()
// One real app (small bundle) to show that probe paths answer and the autoscaling metric exists.
const app = await testApp(t, await testBundle(t, { featureDim: 4, heads: [3, 3], numLabels: 9, seed: 1 }))
const byKind = (kind: string): Manifest[] => manifests.filter((m) => m.doc.kind === kind)
const one = (kind: string, file?: string): Any => {
  const found = byKind(kind).filter((m) => file === undefined || m.file.endsWith(file))
  if (found.length !== 1) throw new Error(`expected one ${kind}${file ? ` in ${file}` : ''}, found ${found.length}`)
  return found[0]!.doc
}

t.test('every manifest is a known kind and valid under its schema', async (t) => {
  t.ok(manifests.length >= 8, `${manifests.length} documents`)
  for (const { file, doc } of manifests) {
    const kind = KINDS[kindOf(doc)]
    if (!kind) {
      t.fail(`${file}: ${kindOf(doc)} is not a kind this test knows`)
      continue
    }
    t.doesNotThrow(() => kind.validate(doc), `${file}: ${doc.kind} ${doc.metadata?.name} validates`)
  }
  // The schema check must fail on broken documents, or it proves nothing.
  const deployment = one('Deployment', 'deployment.yaml')
  const broken = structuredClone(deployment)
  broken.spec.replicas = '3'
  t.throws(() => KINDS['apps/v1/Deployment']!.validate(broken), 'replicas as a string is rejected')
  const noPort = structuredClone(deployment)
  delete noPort.spec.template.spec.containers[0].livenessProbe.httpGet.port
  t.throws(() => KINDS['apps/v1/Deployment']!.validate(noPort), 'a probe without a port is rejected')
  const scaled = structuredClone(one('ScaledObject'))
  scaled.spec.minReplicaCount = 'three'
  t.throws(() => KINDS['keda.sh/v1alpha1/ScaledObject']!.validate(scaled), 'KEDA: a non-integer minReplicaCount is rejected')
  const runtime = structuredClone(one('ServingRuntime'))
  runtime.spec.containers[0].ports[0].containerPort = 'http'
  t.throws(() => KINDS['serving.kserve.io/v1alpha1/ServingRuntime']!.validate(runtime), 'KServe: a container port as text is rejected')
})

t.test('every field is one its API defines (TypeScript types, excess-property check)', async (t) => {
  const docs = manifests.map((m) => m.doc)
  // Broken copies, one per kind family, each with a field its API does not have: the check must name each.
  const typos: [Any, string][] = []
  const dep = structuredClone(one('Deployment', 'deployment.yaml'))
  dep.spec.template.spec.containers[0].resourcez = dep.spec.template.spec.containers[0].resources
  typos.push([dep, 'resourcez'])
  const keda = structuredClone(one('ScaledObject'))
  keda.spec.triggers[0].metdata = {}
  typos.push([keda, 'metdata'])
  const sr = structuredClone(one('ServingRuntime'))
  sr.spec.protocolVersion = ['v2']
  typos.push([sr, 'protocolVersion'])
  const isvc = structuredClone(one('InferenceService'))
  isvc.spec.predictor.model.storageURI = isvc.spec.predictor.model.storageUri
  typos.push([isvc, 'storageURI'])
  const wrongProtocol = structuredClone(one('InferenceService'))
  wrongProtocol.spec.predictor.model.protocolVersion = 'v3'
  typos.push([wrongProtocol, 'v3'])

  const results = typeCheck([...docs, ...typos.map(([d]) => d)])
  manifests.forEach((m, i) => t.same(results[i], [], `${m.file}: ${m.doc.kind} ${m.doc.metadata?.name}: every field known and well typed`))
  typos.forEach(([, field], j) => {
    const found = results[docs.length + j]!
    t.ok(found.some((msg) => msg.includes(field)), `a manifest with "${field}" is flagged: ${found[0] ?? '(nothing)'}`)
  })
})

/** Env of a container as a record; fails on env entries that are not plain values. */
const envOf = (container: Any): Record<string, string> =>
  Object.fromEntries((container.env ?? []).map((e: Any) => [e.name, String(e.value)]))
const CONFIG_VARS = new Set(Object.values(OPTIONS).map((o) => o.env))
const IMAGE_UID = (() => {
  const users = [...readFileSync('Dockerfile', 'utf8').matchAll(/^USER (\d+):(\d+)$/gm)].map((m) => Number(m[1]))
  if (users.length === 0 || users.some((u) => u !== users[0])) throw new Error(`Dockerfile USER lines disagree: ${users.join(', ')}`)
  return users[0]!
})()

/** Kubernetes quantities as numbers (cpu in cores, memory in bytes): enough to compare requests with limits. */
function quantity(q: string | number): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G)?$/.exec(String(q))
  if (!m) throw new Error(`not a quantity: ${q}`)
  const unit = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ''] ?? 1
  return Number(m[1]) * unit
}

/** The grace period the drain settings need: shutdownBudgetMs (src/http/drain.ts) for the container's env. */
function checkGrace(t: Test, grace: unknown, env: Record<string, string>, what: string): void {
  const config = loadConfig(env)
  const budget = Math.ceil(shutdownBudgetMs(config) / 1000)
  t.type(grace, 'number', `${what}: terminationGracePeriodSeconds set`)
  t.ok((grace as number) >= budget + 1 && (grace as number) <= budget + 10, `${what}: grace ${grace} s covers the drain budget ${budget} s (+1..10 s to exit)`)
}

t.test('the Deployments: probes, ports, env, grace period, security, resources', async (t) => {
  for (const { file, doc } of byKind('Deployment')) {
    const pod = doc.spec.template.spec
    t.same(doc.spec.selector.matchLabels, Object.fromEntries(Object.keys(doc.spec.selector.matchLabels).map((k) => [k, doc.spec.template.metadata.labels[k]])), `${file}: the selector matches the pod labels`)
    t.equal(pod.containers.length, 1, `${file}: one container`)
    const c = pod.containers[0]
    const env = envOf(c)
    for (const name of Object.keys(env)) t.ok(CONFIG_VARS.has(name), `${file}: env ${name} is a setting src/config.ts reads`)
    t.doesNotThrow(() => loadConfig(env), `${file}: the env is a valid configuration`)
    const port = c.ports.find((p: Any) => p.name === 'http')
    t.equal(port?.containerPort, loadConfig(env).port, `${file}: the http port is the PORT the server listens on`)
    t.equal(env.HOST, '0.0.0.0', `${file}: listens beyond loopback`)
    for (const [probe, path] of [['startupProbe', '/health/ready'], ['readinessProbe', '/health/ready'], ['livenessProbe', '/health/live']] as const) {
      t.equal(c[probe]?.httpGet?.path, path, `${file}: ${probe} on ${path}`)
      t.equal(c[probe]?.httpGet?.port, 'http', `${file}: ${probe} on the http port`)
      t.equal((await app.inject(path)).statusCode, 200, `${file}: ${path} answers 200 on a ready server`)
    }
    checkGrace(t, pod.terminationGracePeriodSeconds, env, file)
    t.equal(pod.securityContext.runAsNonRoot, true, `${file}: runAsNonRoot`)
    t.equal(pod.securityContext.runAsUser, IMAGE_UID, `${file}: runAsUser is the image's USER`)
    t.equal(c.securityContext.allowPrivilegeEscalation, false, `${file}: no privilege escalation`)
    t.equal(c.securityContext.readOnlyRootFilesystem, true, `${file}: read-only root filesystem`)
    t.same(c.securityContext.capabilities.drop, ['ALL'], `${file}: all capabilities dropped`)
    for (const r of ['cpu', 'memory']) {
      t.ok(c.resources.requests[r] !== undefined && c.resources.limits[r] !== undefined, `${file}: ${r} request and limit`)
      t.ok(quantity(c.resources.limits[r]) >= quantity(c.resources.requests[r]), `${file}: ${r} limit >= request`)
    }
    t.equal(env.MHE_WORKERS ?? '1', '1', `${file}: one server process per pod (scale with replicas)`)
  }
  const gpu = one('Deployment', 'deployment-gpu.yaml').spec.template.spec.containers[0]
  t.ok(Number(gpu.resources.limits['nvidia.com/gpu']) >= 1, 'GPU variant: an nvidia.com/gpu limit')
  t.match(gpu.image, /:gpu$/, 'GPU variant: the gpu image')
  t.equal(envOf(gpu).MHE_BACKEND, 'tensorflow', 'GPU variant: the tensorflow (CUDA) backend, no silent fallback')
})

t.test('Service, PodDisruptionBudget, HPA and KEDA point at the Deployment', async (t) => {
  const dep = one('Deployment', 'deployment.yaml')
  const podLabels = dep.spec.template.metadata.labels
  const matches = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => podLabels[k] === v)
  const svc = one('Service')
  t.ok(matches(svc.spec.selector), 'Service selects the pods')
  const portNames = dep.spec.template.spec.containers[0].ports.map((p: Any) => p.name)
  for (const p of svc.spec.ports) t.ok(portNames.includes(p.targetPort), `Service port ${p.name} targets a named container port`)
  const pdb = one('PodDisruptionBudget')
  t.ok(matches(pdb.spec.selector.matchLabels), 'PDB selects the pods')
  t.ok(pdb.spec.minAvailable < dep.spec.replicas, 'PDB leaves room for a voluntary disruption')
  const hpa = one('HorizontalPodAutoscaler')
  t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name }, 'HPA scales the Deployment')
  t.equal(hpa.spec.metrics[0].resource.name, 'cpu', 'HPA on CPU')
  t.ok(hpa.spec.minReplicas <= hpa.spec.maxReplicas && hpa.spec.minReplicas >= pdb.spec.minAvailable, 'HPA bounds agree with the PDB')

  const keda = one('ScaledObject')
  t.same(keda.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name }, 'KEDA scales the Deployment')
  const prom = keda.spec.triggers.find((tr: Any) => tr.type === 'prometheus')
  t.ok(prom, 'a prometheus trigger')
  for (const key of ['serverAddress', 'query', 'threshold']) t.type(prom.metadata[key], 'string', `prometheus trigger: ${key} (KEDA requires it)`)
  t.ok(Number.isFinite(Number(prom.metadata.threshold)) && Number(prom.metadata.threshold) > 0, 'threshold is a positive number')
  const metric = /\b(mhe_[a-z_]+)\{/.exec(prom.metadata.query)?.[1]
  t.equal(metric, 'mhe_queue_depth', 'the query reads the queue depth')
  t.match((await app.inject('/metrics')).body, new RegExp(`^${metric} \\d+$`, 'm'), `the server exports ${metric}`)
  t.ok(existsSync(join(DIR, 'keda-scaledobject.yaml')), 'keda-scaledobject.yaml is where the README says')
})

t.test('kustomization.yaml lists the core manifests that exist', async (t) => {
  const kust = parseAllDocuments(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8'))[0]!.toJS() as Any
  t.equal(kust.kind, 'Kustomization')
  for (const r of kust.resources) t.ok(existsSync(join(DIR, r)), `${r} exists`)
  t.same([...kust.resources].sort(), ['deployment.yaml', 'hpa.yaml', 'pdb.yaml', 'service.yaml'], 'CPU Deployment, Service, PDB, HPA; KEDA, GPU and KServe are applied on their own')
  t.equal(kust.images[0].name, one('Deployment', 'deployment.yaml').spec.template.spec.containers[0].image.split(':')[0], 'the image override names the Deployment image')
})

t.test('KServe: ServingRuntime (V2) and an InferenceService that uses it', async (t) => {
  const runtime = one('ServingRuntime')
  const isvc = one('InferenceService')
  t.ok(runtime.spec.protocolVersions.includes('v2'), 'the runtime speaks protocol v2')
  const c = runtime.spec.containers[0]
  t.equal(c.name, 'kserve-container', 'the serving container has the name KServe looks for')
  const env = envOf(c)
  t.equal(env.MHE_MODEL, '/mnt/models', 'the model is read where KServe puts it')
  t.notOk('PORT' in env, 'PORT is not set: Knative reserves it and sets it to the container port')
  for (const name of Object.keys(env)) t.ok(CONFIG_VARS.has(name), `env ${name} is a setting src/config.ts reads`)
  t.equal(c.ports[0].containerPort, Number(OPTIONS.port.default), 'the container port is the server\'s default PORT (raw deployment mode sets no PORT)')
  t.equal(c.readinessProbe.httpGet.path, '/v2/health/ready')
  t.equal(c.livenessProbe.httpGet.path, '/v2/health/live')
  t.equal(c.securityContext.runAsUser, IMAGE_UID, 'runs as the image\'s USER')
  t.equal(c.securityContext.runAsNonRoot, true)
  for (const path of ['/v2/health/ready', '/v2/health/live']) t.equal((await app.inject(path)).statusCode, 200, `${path} answers 200`)

  const model = isvc.spec.predictor.model
  t.equal(model.runtime, runtime.metadata.name, 'the InferenceService names the runtime')
  const format = runtime.spec.supportedModelFormats.find((f: Any) => f.name === model.modelFormat.name)
  t.ok(format, 'its model format is one the runtime supports')
  t.equal(model.modelFormat.version, format?.version, 'and the same format version')
  t.equal(model.protocolVersion, 'v2')
  t.match(model.storageUri, /^(s3|gs|https?|pvc|hdfs|webhdfs|oci):\/\//, 'a storageUri KServe can download')
  const demo = JSON.parse(readFileSync('models/demo/mhe.json', 'utf8')) as { name: string }
  t.equal(isvc.metadata.name, demo.name, 'the InferenceService name is the bundle name the V2 paths answer for')
  checkGrace(t, isvc.spec.predictor.terminationGracePeriodSeconds, env, 'InferenceService predictor')
})
