// WebGPU rules that run without a GPU: which adapters count as a GPU, Dawn's reasons, the storage-binding cap on
// weights and batch rows; and the real adapter probe on this machine (a child process that must not crash).
import t from 'tap'
import { existsSync } from 'node:fs'
import {
  STORAGE_BINDING_LIMIT,
  dawnReason,
  describeAdapter,
  maxRowsPerCall,
  oversizeWeights,
  probeAdapter,
  softwareAdapterReason,
  tensorBytes,
} from '../../src/engine/webgpu.js'

const adapter = (o: Partial<Parameters<typeof softwareAdapterReason>[0]>) => ({
  vendor: '',
  architecture: '',
  device: '',
  description: '',
  isFallbackAdapter: false,
  ...o,
})

t.test('real GPUs pass; fallback and software adapters do not', async (t) => {
  // As Dawn reported the H200 (issue 15) and typical discrete GPUs.
  t.equal(softwareAdapterReason(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' })), undefined)
  t.equal(softwareAdapterReason(adapter({ vendor: 'amd', architecture: 'rdna-3', device: 'AMD Radeon RX 7900 XTX' })), undefined)
  t.match(softwareAdapterReason(adapter({ vendor: 'google', device: 'SwiftShader Device (Subzero)', isFallbackAdapter: true })), /^only a fallback \(software\) adapter: google, SwiftShader/)
  // A software Vulkan that does not set the fallback flag is caught by its name.
  t.match(softwareAdapterReason(adapter({ vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })), /^only a software adapter: mesa, llvmpipe/)
  t.match(softwareAdapterReason(adapter({ vendor: 'google', architecture: 'swiftshader' })), /software/)
  t.match(softwareAdapterReason(adapter({ device: 'Microsoft Basic Render Driver' })), /software/)
})

t.test('adapter names', async (t) => {
  t.equal(describeAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H200' })), 'nvidia hopper, NVIDIA H200')
  t.equal(describeAdapter(adapter({ vendor: 'nvidia', device: 'NVIDIA H200' })), 'nvidia, NVIDIA H200')
  t.equal(describeAdapter(adapter({})), 'unnamed adapter')
})

t.test("Dawn's stderr becomes one reason", async (t) => {
  // Both as printed by dawn.node 0.6.2 here: no Vulkan loader, and Debian 12's lavapipe.
  const noLoader =
    "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory\n" +
    '    at operator() (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/BackendVk.cpp:368)\n\n'
  t.equal(dawnReason(noLoader), "Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such file or directory")
  const lavapipe =
    'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.\n - While initializing adapter (backend=BackendType::Vulkan)\n' +
    '    at InitializeImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)\n'
  t.equal(dawnReason(lavapipe), 'Vulkan shaderUniform*ArrayDynamicIndexing required.')
  t.equal(dawnReason(''), undefined)
})

t.test('weights over one storage binding are named, largest first', async (t) => {
  const oheKernel = { name: 'heads/kernel', shape: [768, 1_000_000], dtype: 'float32' }
  const mheKernel = { name: 'heads/kernel', shape: [768, 300], dtype: 'float32' }
  t.equal(tensorBytes(oheKernel), 3_072_000_000)
  // OHE over 10^6 labels at d=768 does not fit (issue 15); the MHE heads [100, 100, 100] of the same C do.
  t.strictSame(oversizeWeights([oheKernel, { name: 'heads/bias', shape: [1_000_000], dtype: 'float32' }], STORAGE_BINDING_LIMIT), [oheKernel])
  t.strictSame(oversizeWeights([mheKernel], STORAGE_BINDING_LIMIT), [])
  // The boundary: exactly the limit fits, 4 bytes more does not.
  const atLimit = { name: 'w', shape: [STORAGE_BINDING_LIMIT / 4], dtype: 'float32' }
  const over = { name: 'v', shape: [STORAGE_BINDING_LIMIT / 4 + 1], dtype: 'float32' }
  t.strictSame(oversizeWeights([atLimit, over], STORAGE_BINDING_LIMIT), [over])
  const bigger = { name: 'u', shape: [2, STORAGE_BINDING_LIMIT / 4], dtype: 'int32' }
  t.strictSame(oversizeWeights([over, bigger], STORAGE_BINDING_LIMIT).map((w) => w.name), ['u', 'v'], 'largest first')
})

t.test('batch rows are capped so every per-row tensor fits one binding', async (t) => {
  // OHE C=10^5: tfjs-webgpu's top-k scratch is [rows, 2^17] int32 = 512 KiB a row: 4096 rows would be 2 GiB + 4 bytes.
  const ohe = maxRowsPerCall(STORAGE_BINDING_LIMIT, 768, [100_000], [{ name: 'k', shape: [768, 100_000], dtype: 'float32' }])
  t.equal(ohe, 4095)
  t.ok(ohe * 131072 * 4 <= STORAGE_BINDING_LIMIT && (ohe + 1) * 131072 * 4 > STORAGE_BINDING_LIMIT)
  // MHE heads [100,100,100] at d=768: the input row is the widest (3 KiB), far from any real batch.
  t.equal(maxRowsPerCall(STORAGE_BINDING_LIMIT, 768, [100, 100, 100], []), Math.floor(STORAGE_BINDING_LIMIT / (4 * 768)))
  // A hidden layer wider than input and heads sets the row size.
  t.equal(maxRowsPerCall(4 * 1000 * 10, 16, [4, 4], [{ name: 'hidden', shape: [16, 1000], dtype: 'float32' }]), 10)
  t.equal(maxRowsPerCall(10, 16, [4, 4], []), 1, 'never below one row')
})

t.test('the adapter probe answers on this machine without crashing it', async (t) => {
  const installed = existsSync(new URL('../../node_modules/webgpu/package.json', import.meta.url))
  const probe = await probeAdapter()
  if (!installed) {
    t.equal(probe, undefined, 'no webgpu package: nothing to probe')
    return
  }
  t.ok(probe, 'a result from the child process')
  if (probe?.ok === true) {
    // A machine with a GPU: the probe names it and it is no software adapter.
    t.equal(softwareAdapterReason(probe.adapter), undefined)
    t.ok(probe.adapter.maxStorageBufferBindingSize > 0)
  } else {
    // These CPU machines: no Vulkan loader, or Debian's lavapipe, which Dawn refuses: requestAdapter() gives null.
    t.match(probe?.reason, /^(no GPU adapter|only a (fallback|software))/, `reason: ${probe?.reason}`)
    t.notMatch(probe?.reason, /\n/, 'one line')
  }
})
