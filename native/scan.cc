// The numbers of one JSON row ([1.5, -2e3, ...]) read into float32s, for src/http/scan-instances.ts: its readNumber
// in native code. Every number becomes the correctly rounded double JSON.parse makes of it, then a float32 as a
// Float32Array stores it, so its values are JSON.parse's bit for bit: Clinger's fast path where the JS reader takes
// it (the same operations), std::from_chars (correctly rounded) for the rest, such as the 17 significant digits of a
// float32 printed as a double, which the JS reader hands to Number(). Anything else in the row (a double out of
// range, a value past float32, malformed JSON, a row longer than the room given) makes it give up (-1), and the JS
// reader reads that row from its start.
#include <node_api.h>
#include <charconv>
#include <cmath>
#include <cstdint>

namespace {

// Bumped with any change to the exports; src/native-addon.ts refuses a build of another version.
constexpr int32_t SCAN_VERSION = 1;

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) {                          \
      napi_throw_error(env, nullptr, "scan: " #call); \
      return nullptr;                                 \
    }                                                 \
  } while (0)

// 10^0 .. 10^22: exact in float64.
constexpr double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                              1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
constexpr uint64_t EXACT = uint64_t(1) << 53;

inline bool isSpace(uint8_t c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
inline bool isDigit(uint8_t c) { return c >= '0' && c <= '9'; }

/**
 * The JSON number (RFC 8259) at b[i..n), as a correctly rounded double, as JSON.parse reads it; i moves past it.
 * False for no number there, or one whose double is out of range (JSON.parse makes it 0 or Infinity: left to JS).
 */
inline bool readNumber(const uint8_t* b, int64_t n, int64_t& i, double& v) {
  auto byte = [&](int64_t k) -> uint8_t { return k < n ? b[k] : 0; };
  const int64_t start = i;
  uint8_t c = byte(i);
  const bool negative = c == '-';
  if (negative) c = byte(++i);
  uint64_t m = 0;
  int digits = 0;
  if (c == '0') {
    c = byte(++i);
  } else if (c > '0' && c <= '9') {
    do {
      m = m * 10 + (c - '0');
      digits++;
      c = byte(++i);
    } while (isDigit(c));
  } else {
    return false;
  }
  int64_t exponent = 0;
  if (c == '.') {
    c = byte(++i);
    const int64_t from = i;
    while (isDigit(c)) {
      m = m * 10 + (c - '0');
      digits++;
      c = byte(++i);
    }
    if (i == from) return false;
    exponent = from - i;
  }
  if (c == 'e' || c == 'E') {
    c = byte(++i);
    const int sign = c == '-' ? -1 : 1;
    if (c == '-' || c == '+') c = byte(++i);
    const int64_t from = i;
    int64_t e = 0;
    while (isDigit(c)) {
      if (e < 100000) e = e * 10 + (c - '0');  // beyond, the value is 0 or infinite whatever the digits
      c = byte(++i);
    }
    if (i == from) return false;
    exponent += sign * e;
  }
  // Clinger's fast path, as the JS reader takes it: m exact (at most 19 digits, so no wrap; below 2^53, so exact in a
  // double), times or over an exact power of ten, one rounding.
  if (digits <= 19 && m < EXACT && exponent >= -22 && exponent <= 22) {
    const double x = exponent < 0 ? double(m) / POW10[-exponent] : double(m) * POW10[exponent];
    v = negative ? -x : x;
    return true;
  }
  // Any other number (17 significant digits, as a float32 printed as a double has): correctly rounded, as Number().
  const auto read = std::from_chars(reinterpret_cast<const char*>(b + start), reinterpret_cast<const char*>(b + i), v);
  return read.ec == std::errc() && read.ptr == reinterpret_cast<const char*>(b + i);
}

/**
 * Reads the row's values from b[i] (just past its '['), to and with its ']', into room[at..]. Returns the index past
 * the ']' and sets `at` to past the last value, or returns -1 for anything it does not take. b[n] is never read: a
 * byte past the end reads as 0, which is no part of a number.
 */
int64_t readRow(const uint8_t* b, int64_t n, int64_t i, float* room, int64_t roomLen, int64_t& at) {
  auto byte = [&](int64_t k) -> uint8_t { return k < n ? b[k] : 0; };
  while (isSpace(byte(i))) i++;
  if (byte(i) == ']') return i + 1;
  for (;;) {
    double v;
    if (!readNumber(b, n, i, v)) return -1;
    const float f = float(v);
    if (!std::isfinite(f) || at == roomLen) return -1;
    room[at++] = f;
    uint8_t c = byte(i);
    if (!(c == ',' || c == ']')) {
      while (isSpace(c)) c = byte(++i);
    }
    if (c == ']') return i + 1;
    if (c != ',') return -1;
    do c = byte(++i);
    while (isSpace(c));
  }
}

bool bytesOf(napi_env env, napi_value v, void** data, size_t* length, napi_typedarray_type want) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  return napi_get_typedarray_info(env, v, &type, length, data, nullptr, nullptr) == napi_ok && type == want;
}

// row(body: Uint8Array, i, room: Float32Array, at, end: Int32Array): the new `at`, the index past the ']' in end[0];
// -1 when it leaves the row to the JS reader.
napi_value row(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  void *body, *room, *end;
  size_t bodyLen, roomLen, endLen;
  int64_t i, at;
  if (argc < 5 || !bytesOf(env, argv[0], &body, &bodyLen, napi_uint8_array) || !bytesOf(env, argv[2], &room, &roomLen, napi_float32_array) ||
      !bytesOf(env, argv[4], &end, &endLen, napi_int32_array) || endLen < 1 || napi_get_value_int64(env, argv[1], &i) != napi_ok ||
      napi_get_value_int64(env, argv[3], &at) != napi_ok || i < 0 || at < 0 || size_t(at) > roomLen) {
    napi_throw_type_error(env, nullptr, "scan: row(body: Uint8Array, i, room: Float32Array, at, end: Int32Array)");
    return nullptr;
  }
  const int64_t past = readRow(static_cast<const uint8_t*>(body), int64_t(bodyLen), i, static_cast<float*>(room), int64_t(roomLen), at);
  napi_value out;
  if (past < 0 || past > INT32_MAX) {
    CHECK(napi_create_int32(env, -1, &out));
    return out;
  }
  static_cast<int32_t*>(end)[0] = int32_t(past);
  CHECK(napi_create_int64(env, at, &out));
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn, version;
  napi_create_function(env, "row", NAPI_AUTO_LENGTH, row, nullptr, &fn);
  napi_create_int32(env, SCAN_VERSION, &version);
  napi_set_named_property(env, exports, "row", fn);
  napi_set_named_property(env, exports, "version", version);
  return exports;
}
