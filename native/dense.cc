// Dense layers (y = act(x W + b)) for the engine, in native code, on the weights where the wasm backend keeps them
// (its heap: no copy). The wasm kernel has 4-wide SIMD and no FMA; this is the same arithmetic in the same order
// (bias first, then the products for k = 0, 1, ... added one by one, no fused multiply-add), so its outputs are the
// wasm kernel's bit for bit, with the machine's widest vectors (AVX-512: 16 lanes, AVX2: 8).
#include <node_api.h>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// Bumped with any change to the exports; src/engine/native-dense.ts refuses a build of another version (a stale
// native/build/dense.node after a pull without a reinstall).
constexpr int32_t DENSE_VERSION = 2;

/** One layer: where its kernel [inDim][outDim] and bias [outDim] are in the heap (in floats), and its clamp. */
struct Layer {
  int64_t kernel = 0, bias = -1;  // bias -1: none
  int32_t inDim = 0, outDim = 0;
  float lo = 0, hi = 0;  // the activation as the clamp the wasm kernel applies (relu, relu6)
  bool clamp = false;    // false: linear, no clamp (NaN stays NaN)
};

struct Chain {
  std::vector<Layer> layers;
  std::vector<float> scratch[2];  // hidden layers' outputs
  bool freed = false;
};

/** What one layer reads and writes, with strides in floats. */
struct Step {
  const float* w;
  const float* b;  // null: no bias
  const float* x;
  float* y;
  int32_t inDim, outDim, xStride;
  float lo, hi;
  bool clamp;
};

/**
 * The clamp as the wasm kernel computes it. On x86 hosts XNNPACK's wasm kernels clamp with pmax(lo, f) then
 * pmin(hi, f), which turn NaN into lo; elsewhere with f32x4.max / min, which keep NaN.
 */
inline float clampOf(float f, float lo, float hi) {
#if defined(__x86_64__)
  f = lo < f ? f : lo;
  return f < hi ? f : hi;
#else
  if (f != f) return f;
  f = f < lo ? lo : f;
  return f > hi ? hi : f;
#endif
}

template <typename V>
__attribute__((always_inline)) inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

/** Rows [0, R) by columns [col, col + B * L): R x B accumulators, each output's sum in the wasm kernel's order. */
template <typename V, int L, int R, int B>
__attribute__((always_inline)) inline void block(const Step& s, int32_t col) {
  V acc[R][B];
  for (int v = 0; v < B; v++) {
    const V bias = s.b ? load<V>(s.b + col + v * L) : V{};
    for (int i = 0; i < R; i++) acc[i][v] = bias;
  }
  const float* w = s.w + col;
  for (int32_t k = 0; k < s.inDim; k++, w += s.outDim) {
    V wv[B];
    for (int v = 0; v < B; v++) wv[v] = load<V>(w + v * L);
    for (int i = 0; i < R; i++) {
      const float a = s.x[int64_t(i) * s.xStride + k];
      for (int v = 0; v < B; v++) acc[i][v] = acc[i][v] + a * wv[v];
    }
  }
  for (int i = 0; i < R; i++)
    for (int v = 0; v < B; v++) {
      float f[L];
      std::memcpy(f, &acc[i][v], sizeof(V));
      if (s.clamp)
        for (int j = 0; j < L; j++) f[j] = clampOf(f[j], s.lo, s.hi);
      std::memcpy(s.y + int64_t(i) * s.outDim + col + v * L, f, sizeof(V));
    }
}

/**
 * Every column of R rows: blocks of B vectors, then single vectors, then one vector that ends at the last column
 * and overlaps the one before (its columns computed again, to the same values). Needs outDim >= L.
 */
template <typename V, int L, int R, int B>
__attribute__((always_inline)) inline void columns(const Step& s) {
  int32_t col = 0;
  for (; col + B * L <= s.outDim; col += B * L) block<V, L, R, B>(s, col);
  for (; col + L <= s.outDim; col += L) block<V, L, R, 1>(s, col);
  if (col < s.outDim) block<V, L, R, 1>(s, s.outDim - L);
}

/**
 * One row, NV vectors of columns from `col` at once, k outermost: the kernel is read once, front to back (what the
 * hardware prefetcher follows best), which is what a lone request's row is bound by. A vector past the last column
 * ends at it instead, overlapping the one before.
 */
template <typename V, int L, int NV>
__attribute__((always_inline)) inline void wide(const Step& s, int32_t col) {
  int32_t at[NV];
  V acc[NV];
  for (int v = 0; v < NV; v++) {
    at[v] = col + v * L > s.outDim - L ? s.outDim - L : col + v * L;
    acc[v] = s.b ? load<V>(s.b + at[v]) : V{};
  }
  const float* w = s.w;
  for (int32_t k = 0; k < s.inDim; k++, w += s.outDim) {
    const float a = s.x[k];
    for (int v = 0; v < NV; v++) acc[v] = acc[v] + a * load<V>(w + at[v]);
  }
  for (int v = 0; v < NV; v++) {
    float f[L];
    std::memcpy(f, &acc[v], sizeof(V));
    if (s.clamp)
      for (int j = 0; j < L; j++) f[j] = clampOf(f[j], s.lo, s.hi);
    std::memcpy(s.y + at[v], f, sizeof(V));
  }
}

#define WIDE_CASE(k) case k: return wide<V, L, k>(s, col);
/** wide() with NV = nv (1 to 24; the caller keeps NV within its registers: 12 on AVX-512, 8 on AVX2, measured). */
template <typename V, int L>
__attribute__((always_inline)) inline void wideOf(int nv, const Step& s, int32_t col) {
  switch (nv) {
    WIDE_CASE(1) WIDE_CASE(2) WIDE_CASE(3) WIDE_CASE(4) WIDE_CASE(5) WIDE_CASE(6) WIDE_CASE(7) WIDE_CASE(8)
    WIDE_CASE(9) WIDE_CASE(10) WIDE_CASE(11) WIDE_CASE(12) WIDE_CASE(13) WIDE_CASE(14) WIDE_CASE(15) WIDE_CASE(16)
    WIDE_CASE(17) WIDE_CASE(18) WIDE_CASE(19) WIDE_CASE(20) WIDE_CASE(21) WIDE_CASE(22) WIDE_CASE(23) WIDE_CASE(24)
  }
}
#undef WIDE_CASE

/** One row, every column: as many vectors at a time as MAXNV accumulators allow. Needs outDim >= L. */
template <typename V, int L, int MAXNV>
__attribute__((always_inline)) inline void wideRow(const Step& s) {
  const int32_t vectors = (s.outDim + L - 1) / L;
  for (int32_t v = 0; v < vectors; v += MAXNV) wideOf<V, L>(vectors - v < MAXNV ? vectors - v : MAXNV, s, v * L);
}

template <typename V, int L, int R, int B, int MAXNV = 0>
__attribute__((always_inline)) inline void rows(Step s, int32_t n) {
  int32_t i = 0;
  const float* x = s.x;
  float* y = s.y;
  for (; i + R <= n; i += R) {
    s.x = x + int64_t(i) * s.xStride;
    s.y = y + int64_t(i) * s.outDim;
    columns<V, L, R, B>(s);
  }
  for (; i < n; i++) {
    s.x = x + int64_t(i) * s.xStride;
    s.y = y + int64_t(i) * s.outDim;
    if constexpr (MAXNV > 0) wideRow<V, L, MAXNV>(s);
    else columns<V, L, 1, B>(s);
  }
}

typedef float f4 __attribute__((vector_size(16)));
/** Any layer, on 128-bit vectors where it has 4 outputs or more, else one float at a time. */
void layerNarrow(const Step& s, int32_t n) {
  if (s.outDim >= 4) rows<f4, 4, 4, 2>(s, n);
  else rows<float, 1, 4, 1>(s, n);
}
#if defined(__x86_64__)
typedef float f8 __attribute__((vector_size(32)));
typedef float f16 __attribute__((vector_size(64)));
__attribute__((target("avx512f"))) void layer512(const Step& s, int32_t n) {
  if (s.outDim < 16) return layerNarrow(s, n);
  rows<f16, 16, 4, 4, 12>(s, n);
}
__attribute__((target("avx2"))) void layer256(const Step& s, int32_t n) {
  if (s.outDim < 8) return layerNarrow(s, n);
  rows<f8, 8, 4, 2, 8>(s, n);
}
#endif

using LayerFn = void (*)(const Step&, int32_t);
struct Vectors {
  const char* name;
  LayerFn layer;
  bool supported;
};
/** Every path, widest first, and whether this CPU runs it. */
std::vector<Vectors> paths() {
  std::vector<Vectors> all;
#if defined(__x86_64__)
  __builtin_cpu_init();
  all.push_back({"avx512f", layer512, __builtin_cpu_supports("avx512f") != 0});
  all.push_back({"avx2", layer256, __builtin_cpu_supports("avx2") != 0});
#endif
  all.push_back({"128-bit", layerNarrow, true});
  return all;
}
const std::vector<Vectors> PATHS = paths();
/** The path in use: the widest this CPU runs (useVectors changes it, for the tests of every path). */
const Vectors* current = [] {
  for (const Vectors& v : PATHS)
    if (v.supported) return &v;
  return &PATHS.back();
}();

#define CHECK(call) if ((call) != napi_ok) { napi_throw_error(env, nullptr, "dense: " #call " failed"); return nullptr; }

float* floats(napi_env env, napi_value v, size_t* length) {
  napi_typedarray_type type;
  void* data = nullptr;
  size_t len = 0;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) return nullptr;
  *length = len;
  return static_cast<float*>(data);
}

/** The number v holds; NaN when it is not a number. */
double number(napi_env env, napi_value v) {
  double d = 0;
  return napi_get_value_double(env, v, &d) == napi_ok ? d : NAN;
}

void finalize(napi_env, void* data, void*) { delete static_cast<Chain*>(data); }

Chain* unwrap(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok) return nullptr;
  return static_cast<Chain*>(data);
}

bool whole(double d) { return d >= 0 && d <= 4294967296.0 * 1024 && d == static_cast<double>(static_cast<int64_t>(d)); }

// create([kernelAt, biasAt (-1: none), inDim, outDim, lo, hi] per layer; offsets in floats) -> external
napi_value create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  uint32_t count = 0;
  bool isArray = false;
  CHECK(napi_is_array(env, argv[0], &isArray));
  if (isArray) CHECK(napi_get_array_length(env, argv[0], &count));
  auto* c = new Chain();
  for (uint32_t i = 0; i < count; i++) {
    napi_value spec, f[6];
    CHECK(napi_get_element(env, argv[0], i, &spec));
    for (uint32_t j = 0; j < 6; j++) CHECK(napi_get_element(env, spec, j, &f[j]));
    const double kernel = number(env, f[0]), bias = number(env, f[1]), inDim = number(env, f[2]), outDim = number(env, f[3]);
    const double lo = number(env, f[4]), hi = number(env, f[5]);
    // Dimensions below 2^28: 4 rows of offsets in int64 arithmetic, and no int32 product near its limit.
    const bool ok = whole(kernel) && (bias == -1 || whole(bias)) && whole(inDim) && inDim >= 1 && inDim < 1 << 28 && whole(outDim) && outDim >= 1 && outDim < 1 << 28 &&
                    lo <= hi && (i == 0 || int32_t(inDim) == c->layers.back().outDim);
    if (!ok) {
      delete c;
      napi_throw_type_error(env, nullptr, "dense: a layer is [kernelAt, biasAt or -1, inDim, outDim, lo, hi] with lo <= hi, each inDim the outDim before it");
      return nullptr;
    }
    Layer l;
    l.kernel = int64_t(kernel);
    l.bias = int64_t(bias);
    l.inDim = int32_t(inDim);
    l.outDim = int32_t(outDim);
    l.lo = static_cast<float>(lo);
    l.hi = static_cast<float>(hi);
    l.clamp = !(std::isinf(lo) && lo < 0 && std::isinf(hi) && hi > 0);
    c->layers.push_back(l);
  }
  if (c->layers.empty()) {
    delete c;
    napi_throw_type_error(env, nullptr, "dense: create takes an array of one layer or more");
    return nullptr;
  }
  napi_value out;
  CHECK(napi_create_external(env, c, finalize, nullptr, &out));
  return out;
}

// run(chain, heap Float32Array, x Float32Array(n * inDim), n, out Float32Array(n * outDim))
napi_value run(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Chain* c = unwrap(env, argv[0]);
  size_t heapLen = 0, xLen = 0, yLen = 0;
  const float* heap = floats(env, argv[1], &heapLen);
  const float* x = floats(env, argv[2], &xLen);
  const double n = number(env, argv[3]);
  float* y = floats(env, argv[4], &yLen);
  if (c != nullptr && !c->freed && n == 0) return nullptr;  // nothing to do (and empty arrays have no data pointer)
  if (c == nullptr || c->freed || heap == nullptr || x == nullptr || y == nullptr || !whole(n) || n >= 1 << 30) {
    napi_throw_type_error(env, nullptr, "dense: run(chain, heap Float32Array, x Float32Array, n, out Float32Array) on a live chain");
    return nullptr;
  }
  const Layer& first = c->layers.front();
  const Layer& last = c->layers.back();
  if (xLen != size_t(n) * first.inDim || yLen != size_t(n) * last.outDim) {
    napi_throw_range_error(env, nullptr, "dense: x must hold n * inDim values and out n * outDim");
    return nullptr;
  }
  for (const Layer& l : c->layers) {
    if (size_t(l.kernel) + size_t(l.inDim) * l.outDim > heapLen || (l.bias >= 0 && size_t(l.bias) + l.outDim > heapLen)) {
      napi_throw_range_error(env, nullptr, "dense: a layer's weights are past the end of the heap");
      return nullptr;
    }
  }
  const float* in = x;
  int32_t stride = first.inDim;
  for (size_t i = 0; i < c->layers.size(); i++) {
    const Layer& l = c->layers[i];
    float* to = y;
    if (i + 1 < c->layers.size()) {
      std::vector<float>& buffer = c->scratch[i % 2];
      if (buffer.size() < size_t(n) * l.outDim) {
        try {
          buffer.resize(size_t(n) * l.outDim);
        } catch (const std::bad_alloc&) {
          napi_throw_error(env, nullptr, "dense: out of memory for a hidden layer's outputs");
          return nullptr;
        }
      }
      to = buffer.data();
    }
    current->layer({heap + l.kernel, l.bias >= 0 ? heap + l.bias : nullptr, in, to, l.inDim, l.outDim, stride, l.lo, l.hi, l.clamp}, int32_t(n));
    in = to;
    stride = l.outDim;
  }
  return nullptr;
}

// free(chain): its scratch memory now, not when the garbage collector gets to it; a freed chain refuses to run
napi_value freeChain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (Chain* c = unwrap(env, argv[0])) {
    c->freed = true;
    for (auto& s : c->scratch) std::vector<float>().swap(s);
  }
  return nullptr;
}

// useVectors(name): runs on that path from now on, if this CPU has it (true) or not (false). For the tests.
napi_value useVectors(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char name[32] = {0};
  size_t length = 0;
  bool used = false;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &length) == napi_ok) {
    for (const Vectors& v : PATHS)
      if (v.supported && std::strcmp(v.name, name) == 0) {
        current = &v;
        used = true;
      }
  }
  napi_value out;
  CHECK(napi_get_boolean(env, used, &out));
  return out;
}

// The paths this CPU runs, widest first.
napi_value vectorsSupported(napi_env env, napi_callback_info) {
  napi_value out;
  CHECK(napi_create_array(env, &out));
  uint32_t i = 0;
  for (const Vectors& v : PATHS) {
    if (!v.supported) continue;
    napi_value name;
    CHECK(napi_create_string_utf8(env, v.name, NAPI_AUTO_LENGTH, &name));
    CHECK(napi_set_element(env, out, i++, name));
  }
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"create", nullptr, create, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"run", nullptr, run, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"free", nullptr, freeChain, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"useVectors", nullptr, useVectors, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"vectorsSupported", nullptr, vectorsSupported, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value name, version;
  napi_create_string_utf8(env, current->name, NAPI_AUTO_LENGTH, &name);
  napi_create_int32(env, DENSE_VERSION, &version);
  napi_define_properties(env, exports, 5, props);
  napi_set_named_property(env, exports, "vectors", name);
  napi_set_named_property(env, exports, "version", version);
  return exports;
}
