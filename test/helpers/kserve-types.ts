// The KServe kinds our manifests use, as TypeScript types written from KServe's API reference (the Go types behind
// its CRDs: serving.kserve.io/v1alpha1 ServingRuntimeSpec, v1beta1 InferenceServiceSpec / PredictorSpec /
// ModelSpec / ComponentExtensionSpec), built on kubernetes-models' core types where KServe embeds them
// (Container, PodSpec, ObjectMeta). Only the fields KServe documents are here, so a misspelt or invented field fails
// the type check in test/system/deploy-kubernetes.test.ts. Fields we do not use are left out, which only makes
// the check stricter.
import type { IContainer } from 'kubernetes-models/v1/Container'
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec'
import type { IVolume } from 'kubernetes-models/v1/Volume'
import type { IToleration } from 'kubernetes-models/v1/Toleration'
import type { IAffinity } from 'kubernetes-models/v1/Affinity'
import type { ILocalObjectReference } from 'kubernetes-models/v1/LocalObjectReference'
import type { IObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta'

/** KServe's InferenceServiceProtocol values. */
export type Protocol = 'v1' | 'v2' | 'grpc-v1' | 'grpc-v2'

/** v1alpha1 SupportedModelFormat. */
export interface SupportedModelFormat {
  name: string
  version?: string
  autoSelect?: boolean
  priority?: number
}

/** v1alpha1 ServingRuntimePodSpec (inlined into ServingRuntimeSpec). */
export interface ServingRuntimePodSpec {
  containers: IContainer[]
  volumes?: IVolume[]
  nodeSelector?: Record<string, string>
  affinity?: IAffinity
  tolerations?: IToleration[]
  labels?: Record<string, string>
  annotations?: Record<string, string>
  imagePullSecrets?: ILocalObjectReference[]
  hostIPC?: boolean
}

/** v1alpha1 ServingRuntimeSpec (single-model fields; the ModelMesh endpoints are left out). */
export interface ServingRuntimeSpec extends ServingRuntimePodSpec {
  supportedModelFormats?: SupportedModelFormat[]
  multiModel?: boolean
  disabled?: boolean
  protocolVersions?: Protocol[]
  replicas?: number
  storageHelper?: { disabled?: boolean }
}

export interface ServingRuntime {
  apiVersion: 'serving.kserve.io/v1alpha1'
  kind: 'ServingRuntime'
  metadata: IObjectMeta
  spec: ServingRuntimeSpec
}

/** v1beta1 ModelSpec: modelFormat and runtime, then PredictorExtensionSpec, which inlines a Container. */
export interface ModelSpec extends Partial<IContainer> {
  modelFormat: { name: string; version?: string }
  runtime?: string
  storageUri?: string
  runtimeVersion?: string
  protocolVersion?: Protocol
}

/** v1beta1 ComponentExtensionSpec (the fields of the HPA-era API; KEDA's autoScaling block is left out). */
export interface ComponentExtensionSpec {
  minReplicas?: number
  maxReplicas?: number
  scaleTarget?: number
  scaleMetric?: 'cpu' | 'memory' | 'concurrency' | 'rps'
  scaleMetricType?: 'Utilization' | 'Value' | 'AverageValue'
  containerConcurrency?: number
  timeout?: number
  canaryTrafficPercent?: number
  labels?: Record<string, string>
  annotations?: Record<string, string>
}

/** v1beta1 PredictorSpec: model, the PodSpec inlined (containers optional here), the component extension. */
export interface PredictorSpec extends Partial<IPodSpec>, ComponentExtensionSpec {
  model?: ModelSpec
}

export interface InferenceService {
  apiVersion: 'serving.kserve.io/v1beta1'
  kind: 'InferenceService'
  metadata: IObjectMeta
  spec: { predictor: PredictorSpec }
}
