// Dense layers (y = act(x W + b)) for the engine, in native code: the wasm backend's kernel has 4-wide SIMD and no
// FMA; this is the same arithmetic in the same order (bias first, then the products for k = 0, 1, ... added one by
// one, no fused multiply-add), so its outputs are the wasm kernel's bit for bit, with the machine's widest vectors.
#include <node_api.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// Bumped with any change to the exports; src/engine/native-dense.ts refuses a build of another version (a stale
// native/build/dense.node after a pull without a reinstall).
constexpr int32_t DENSE_VERSION = 1;

struct Layer {
  float* w = nullptr;  // [inDim][outPad], zero-padded columns
  float* b = nullptr;  // [outPad]
  int32_t inDim = 0, outDim = 0, outPad = 0;
  float lo = 0, hi = 0;  // activation as a clamp, as the wasm kernel applies relu / relu6
};

struct Chain {
  std::vector<Layer> layers;
  float* scratch[2] = {nullptr, nullptr};
  size_t scratchFloats = 0;
  bool freed = false;
};

constexpr int PAD = 16;

void release(Chain* c) {
  if (c->freed) return;
  c->freed = true;
  for (auto& l : c->layers) { std::free(l.w); std::free(l.b); }
  std::free(c->scratch[0]);
  std::free(c->scratch[1]);
}

template <typename V, int L, int R, int B>
__attribute__((always_inline)) inline void block(const Layer& l, const float* x, int32_t xStride, float* y, int32_t col) {
  V acc[R][B];
  for (int v = 0; v < B; v++) {
    V bias;
    std::memcpy(&bias, l.b + col + v * L, sizeof(V));
    for (int i = 0; i < R; i++) acc[i][v] = bias;
  }
  const float* w = l.w + col;
  for (int32_t k = 0; k < l.inDim; k++, w += l.outPad) {
    V wv[B];
    for (int v = 0; v < B; v++) std::memcpy(&wv[v], w + v * L, sizeof(V));
    for (int i = 0; i < R; i++) {
      const float a = x[i * xStride + k];
      for (int v = 0; v < B; v++) acc[i][v] = acc[i][v] + a * wv[v];
    }
  }
  for (int i = 0; i < R; i++)
    for (int v = 0; v < B; v++) {
      V r = acc[i][v];
      for (int j = 0; j < L; j++) {
        float f = r[j];
        f = f < l.lo ? l.lo : f;  // NaN stays NaN, as a clamp by comparisons does
        f = f > l.hi ? l.hi : f;
        r[j] = f;
      }
      std::memcpy(y + i * l.outPad + col + v * L, &r, sizeof(V));
    }
}

template <typename V, int L, int R, int B>
__attribute__((always_inline)) inline void rows(const Layer& l, const float* x, int32_t xStride, float* y) {
  int32_t col = 0;
  for (; col + B * L <= l.outPad; col += B * L) block<V, L, R, B>(l, x, xStride, y, col);
  for (; col < l.outPad; col += L) block<V, L, R, 1>(l, x, xStride, y, col);
}

template <typename V, int L, int R, int B>
__attribute__((always_inline)) inline void layer(const Layer& l, const float* x, int32_t xStride, int32_t n, float* y) {
  int32_t i = 0;
  for (; i + R <= n; i += R) rows<V, L, R, B>(l, x + i * xStride, xStride, y + i * l.outPad);
  for (; i < n; i++) rows<V, L, 1, B>(l, x + i * xStride, xStride, y + i * l.outPad);
}

typedef float f4 __attribute__((vector_size(16)));
#if defined(__x86_64__)
typedef float f8 __attribute__((vector_size(32)));
typedef float f16 __attribute__((vector_size(64)));
__attribute__((target("avx512f"))) void layer512(const Layer& l, const float* x, int32_t s, int32_t n, float* y) { layer<f16, 16, 4, 4>(l, x, s, n, y); }
__attribute__((target("avx2"))) void layer256(const Layer& l, const float* x, int32_t s, int32_t n, float* y) { layer<f8, 8, 4, 2>(l, x, s, n, y); }
#endif
void layer128(const Layer& l, const float* x, int32_t s, int32_t n, float* y) { layer<f4, 4, 4, 2>(l, x, s, n, y); }

using LayerFn = void (*)(const Layer&, const float*, int32_t, int32_t, float*);
LayerFn pick(const char** name) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) { *name = "avx512f"; return layer512; }
  if (__builtin_cpu_supports("avx2")) { *name = "avx2"; return layer256; }
#endif
  *name = "128-bit";
  return layer128;
}
const char* vectorName = nullptr;
const LayerFn runLayer = pick(&vectorName);

#define CHECK(call) if ((call) != napi_ok) { napi_throw_error(env, nullptr, "dense: " #call " failed"); return nullptr; }

float* floats(napi_env env, napi_value v, size_t* length) {
  napi_typedarray_type type;
  void* data;
  size_t len;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) return nullptr;
  *length = len;
  return static_cast<float*>(data);
}

int32_t int32(napi_env env, napi_value v) {
  int32_t i = -1;
  napi_get_value_int32(env, v, &i);
  return i;
}

void finalize(napi_env, void* data, void*) {
  auto* c = static_cast<Chain*>(data);
  release(c);
  delete c;
}

Chain* unwrap(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == nullptr) return nullptr;
  return static_cast<Chain*>(data);
}

// create([kernel, bias | null, inDim, outDim, lo, hi] per layer) -> external
napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  uint32_t count = 0;
  CHECK(napi_get_array_length(env, argv[0], &count));
  auto* c = new Chain();
  for (uint32_t i = 0; i < count; i++) {
    napi_value spec, f[6];
    CHECK(napi_get_element(env, argv[0], i, &spec));
    for (uint32_t j = 0; j < 6; j++) CHECK(napi_get_element(env, spec, j, &f[j]));
    Layer l;
    l.inDim = int32(env, f[2]);
    l.outDim = int32(env, f[3]);
    double lo, hi;
    CHECK(napi_get_value_double(env, f[4], &lo));
    CHECK(napi_get_value_double(env, f[5], &hi));
    l.lo = static_cast<float>(lo);
    l.hi = static_cast<float>(hi);
    l.outPad = (l.outDim + PAD - 1) / PAD * PAD;
    size_t kLen = 0, bLen = 0;
    const float* kernel = floats(env, f[0], &kLen);
    napi_valuetype bType;
    CHECK(napi_typeof(env, f[1], &bType));
    const float* bias = bType == napi_null ? nullptr : floats(env, f[1], &bLen);
    if (l.inDim <= 0 || l.outDim <= 0 || kernel == nullptr || kLen != size_t(l.inDim) * l.outDim || (bType != napi_null && (bias == nullptr || bLen != size_t(l.outDim)))) {
      release(c);
      delete c;
      napi_throw_type_error(env, nullptr, "dense: a layer is [kernel Float32Array(inDim*outDim), bias Float32Array(outDim) | null, inDim, outDim, lo, hi]");
      return nullptr;
    }
    l.w = static_cast<float*>(std::aligned_alloc(64, size_t(l.inDim) * l.outPad * 4));
    l.b = static_cast<float*>(std::aligned_alloc(64, size_t(l.outPad) * 4));
    c->layers.push_back(l);
    if (l.w == nullptr || l.b == nullptr) { release(c); delete c; napi_throw_error(env, nullptr, "dense: out of memory"); return nullptr; }
    for (int32_t k = 0; k < l.inDim; k++) {
      std::memcpy(l.w + size_t(k) * l.outPad, kernel + size_t(k) * l.outDim, size_t(l.outDim) * 4);
      std::memset(l.w + size_t(k) * l.outPad + l.outDim, 0, size_t(l.outPad - l.outDim) * 4);
    }
    std::memset(l.b, 0, size_t(l.outPad) * 4);
    if (bias) std::memcpy(l.b, bias, size_t(l.outDim) * 4);
  }
  napi_value out;
  CHECK(napi_create_external(env, c, finalize, nullptr, &out));
  return out;
}

// run(chain, x Float32Array(n * inDim), n, out Float32Array(n * outDim))
napi_value run(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Chain* c = unwrap(env, argv[0]);
  size_t xLen = 0, yLen = 0;
  const float* x = floats(env, argv[1], &xLen);
  const int32_t n = int32(env, argv[2]);
  float* y = floats(env, argv[3], &yLen);
  if (c == nullptr || c->freed || c->layers.empty() || x == nullptr || y == nullptr || n < 0) {
    napi_throw_type_error(env, nullptr, "dense: run(chain, x Float32Array, n, out Float32Array) on a live chain");
    return nullptr;
  }
  const Layer& first = c->layers.front();
  const Layer& last = c->layers.back();
  if (xLen != size_t(n) * first.inDim || yLen != size_t(n) * last.outDim) {
    napi_throw_range_error(env, nullptr, "dense: x must hold n * inDim values and out n * outDim");
    return nullptr;
  }
  size_t need = 0;
  for (auto& l : c->layers) need = need > size_t(n) * l.outPad ? need : size_t(n) * l.outPad;
  if (need > c->scratchFloats) {
    std::free(c->scratch[0]);
    std::free(c->scratch[1]);
    c->scratch[0] = static_cast<float*>(std::aligned_alloc(64, need * 4));
    c->scratch[1] = static_cast<float*>(std::aligned_alloc(64, need * 4));
    c->scratchFloats = c->scratch[0] && c->scratch[1] ? need : 0;
    if (c->scratchFloats == 0) { napi_throw_error(env, nullptr, "dense: out of memory"); return nullptr; }
  }
  const float* in = x;
  int32_t stride = first.inDim;
  for (size_t i = 0; i < c->layers.size(); i++) {
    float* to = c->scratch[i % 2];
    runLayer(c->layers[i], in, stride, n, to);
    in = to;
    stride = c->layers[i].outPad;
  }
  for (int32_t i = 0; i < n; i++) std::memcpy(y + size_t(i) * last.outDim, in + size_t(i) * last.outPad, size_t(last.outDim) * 4);
  return nullptr;
}

// free(chain): its memory now, not when the garbage collector gets to it
napi_value freeChain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (Chain* c = unwrap(env, argv[0])) release(c);
  return nullptr;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"create", nullptr, create, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"run", nullptr, run, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"free", nullptr, freeChain, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value name, version;
  napi_create_string_utf8(env, vectorName, NAPI_AUTO_LENGTH, &name);
  napi_create_int32(env, DENSE_VERSION, &version);
  napi_define_properties(env, exports, 3, props);
  napi_set_named_property(env, exports, "vectors", name);
  napi_set_named_property(env, exports, "version", version);
  return exports;
}
