/*
 * wm_blas: a minimal Node-API addon that runs single-precision matrix products with the machine's optimised BLAS
 * (OpenBLAS, or MKL) directly on the memory of the tfjs wasm backend.
 *
 * Why: tfjs-backend-wasm's XNNPACK GEMM is limited by wasm's 128-bit SIMD without FMA (~45 GFLOP/s per core here);
 * OpenBLAS uses AVX2/FMA. The wasm backend's heap is a SharedArrayBuffer whose address never changes (shared
 * memory grows in place), so a Float32Array view of a tensor in that heap gives BLAS a plain pointer: no copies.
 *
 * The BLAS library is opened with dlopen at load time, not linked: the addon builds without BLAS headers or a
 * -dev package, and a machine without OpenBLAS gets a clean "unavailable" from init() instead of a load error.
 * A reference (netlib) BLAS is refused: it is slower than XNNPACK. Identification is by symbols only OpenBLAS
 * (openblas_get_config) or MKL (MKL_Get_Version_String) export.
 *
 * JS API (see src/ops/native-blas.ts):
 *   init(paths: string[]) -> { ok: true, lib, config } | { ok: false, reason }
 *   setThreads(n)          OpenBLAS/MKL thread count for later calls
 *   sgemm(a, b, c, batch, M, N, K, transA, transB, strideA, strideB)
 *       for i < batch: C_i[M,N] = op(A_i) op(B_i), row-major; A_i = a + i*strideA (elements; 0 = broadcast), same
 *       for B; C_i = c + i*M*N. a, b, c are Float32Arrays (views of the heap).
 *   sgemv(a, x, y, batch, M, K, trans, strideA, strideX)
 *       for i < batch: y_i[M] = op(A_i) x_i with A_i stored [M,K] (trans=0) or [K,M] (trans=1); y_i = y + i*M.
 *       Decoding's products have one row, where sgemv is 3-5x faster than sgemm with M = 1 (measured).
 */
#include <dlfcn.h>
#include <node_api.h>
#include <stdio.h>
#include <string.h>

/* CBLAS prototypes (cblas.h enums: CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112). */
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*sgemv_fn)(int order, int ta, int m, int n, float alpha, const float *a, int lda, const float *x,
                         int incx, float beta, float *y, int incy);
typedef void (*set_threads_fn)(int n);
typedef char *(*get_config_fn)(void);
typedef void (*mkl_version_fn)(char *buf, int len);

static sgemm_fn p_sgemm;
static sgemv_fn p_sgemv;
static set_threads_fn p_set_threads;
static char lib_name[512];
static char lib_config[512];

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "wm_blas: N-API call failed: " #call); return NULL; } } while (0)

static napi_value make_string(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value make_bool(napi_env env, int b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

/* Try one library: accept it only if it is OpenBLAS or MKL and has the CBLAS functions. */
static const char *try_open(const char *path) {
  static char why[600];
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) { snprintf(why, sizeof why, "%s: %s", path, dlerror()); return why; }
  get_config_fn cfg = (get_config_fn)dlsym(h, "openblas_get_config");
  mkl_version_fn mklv = (mkl_version_fn)dlsym(h, "MKL_Get_Version_String");
  if (!cfg && !mklv) { dlclose(h); snprintf(why, sizeof why, "%s is not OpenBLAS or MKL (a reference BLAS is slower than XNNPACK)", path); return why; }
  sgemm_fn g = (sgemm_fn)dlsym(h, "cblas_sgemm");
  sgemv_fn v = (sgemv_fn)dlsym(h, "cblas_sgemv");
  if (!g || !v) { dlclose(h); snprintf(why, sizeof why, "%s has no cblas_sgemm/cblas_sgemv", path); return why; }
  p_sgemm = g;
  p_sgemv = v;
  p_set_threads = (set_threads_fn)dlsym(h, cfg ? "openblas_set_num_threads" : "MKL_Set_Num_Threads");
  snprintf(lib_name, sizeof lib_name, "%s", path);
  if (cfg) snprintf(lib_config, sizeof lib_config, "%s", cfg());
  else { char buf[256] = {0}; mklv(buf, sizeof buf - 1); snprintf(lib_config, sizeof lib_config, "%s", buf); }
  return NULL;
}

/* init(paths): the first acceptable library wins; the reasons of the others are returned when none is. */
static napi_value init(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_create_object(env, &res));
  if (p_sgemm) {
    napi_set_named_property(env, res, "ok", make_bool(env, 1));
    napi_set_named_property(env, res, "lib", make_string(env, lib_name));
    napi_set_named_property(env, res, "config", make_string(env, lib_config));
    return res;
  }
  uint32_t n = 0;
  CHECK(napi_get_array_length(env, argv[0], &n));
  char reasons[2048] = {0};
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    char path[512];
    size_t len;
    CHECK(napi_get_element(env, argv[0], i, &el));
    CHECK(napi_get_value_string_utf8(env, el, path, sizeof path, &len));
    const char *why = try_open(path);
    if (!why) {
      napi_set_named_property(env, res, "ok", make_bool(env, 1));
      napi_set_named_property(env, res, "lib", make_string(env, lib_name));
      napi_set_named_property(env, res, "config", make_string(env, lib_config));
      return res;
    }
    if (strlen(reasons) + strlen(why) + 3 < sizeof reasons) { if (reasons[0]) strcat(reasons, "; "); strcat(reasons, why); }
  }
  napi_set_named_property(env, res, "ok", make_bool(env, 0));
  napi_set_named_property(env, res, "reason", make_string(env, reasons[0] ? reasons : "no library paths given"));
  return res;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(napi_get_value_int32(env, argv[0], &n));
  if (p_set_threads && n > 0) p_set_threads(n);
  return NULL;
}

/* The float pointer and element length of a Float32Array argument (throws on anything else). */
static float *f32_arg(napi_env env, napi_value v, size_t *length) {
  napi_typedarray_type type;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, length, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "wm_blas: expected a Float32Array");
    return NULL;
  }
  return (float *)data;
}

static int int_args(napi_env env, napi_value *argv, int from, int count, int64_t *out) {
  for (int i = 0; i < count; i++) {
    if (napi_get_value_int64(env, argv[from + i], &out[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "wm_blas: expected an integer argument");
      return 0;
    }
  }
  return 1;
}

static napi_value sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  size_t la, lb, lc;
  int64_t d[8]; /* batch, M, N, K, transA, transB, strideA, strideB */
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!p_sgemm) { napi_throw_error(env, NULL, "wm_blas: init() found no BLAS"); return NULL; }
  if (argc != 11) { napi_throw_error(env, NULL, "wm_blas.sgemm: expected 11 arguments"); return NULL; }
  float *a = f32_arg(env, argv[0], &la), *b, *c;
  if (!a || !(b = f32_arg(env, argv[1], &lb)) || !(c = f32_arg(env, argv[2], &lc))) return NULL;
  if (!int_args(env, argv, 3, 8, d)) return NULL;
  int64_t batch = d[0], M = d[1], N = d[2], K = d[3], sa = d[6], sb = d[7];
  int ta = d[4] != 0, tb = d[5] != 0;
  /* bounds: the last batch entry must lie inside the views (a wrong call must not scribble over the heap) */
  if (batch < 1 || M < 1 || N < 1 || K < 1 || sa < 0 || sb < 0 || M > 0x7fffffff || N > 0x7fffffff || K > 0x7fffffff
      || (uint64_t)((batch - 1) * sa + M * K) > la || (uint64_t)((batch - 1) * sb + K * N) > lb
      || (uint64_t)(batch * M * N) > lc) {
    napi_throw_range_error(env, NULL, "wm_blas.sgemm: dimensions do not fit the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < batch; i++) {
    p_sgemm(101, ta ? 112 : 111, tb ? 112 : 111, (int)M, (int)N, (int)K, 1.0f, a + i * sa, ta ? (int)M : (int)K,
            b + i * sb, tb ? (int)K : (int)N, 0.0f, c + i * M * N, (int)N);
  }
  return NULL;
}

static napi_value sgemv(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  size_t la, lx, ly;
  int64_t d[6]; /* batch, M, K, trans, strideA, strideX */
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!p_sgemv) { napi_throw_error(env, NULL, "wm_blas: init() found no BLAS"); return NULL; }
  if (argc != 9) { napi_throw_error(env, NULL, "wm_blas.sgemv: expected 9 arguments"); return NULL; }
  float *a = f32_arg(env, argv[0], &la), *x, *y;
  if (!a || !(x = f32_arg(env, argv[1], &lx)) || !(y = f32_arg(env, argv[2], &ly))) return NULL;
  if (!int_args(env, argv, 3, 6, d)) return NULL;
  int64_t batch = d[0], M = d[1], K = d[2], sa = d[4], sx = d[5];
  if (batch < 1 || M < 1 || K < 1 || sa < 0 || sx < 0 || M > 0x7fffffff || K > 0x7fffffff
      || (uint64_t)((batch - 1) * sa + M * K) > la || (uint64_t)((batch - 1) * sx + K) > lx || (uint64_t)(batch * M) > ly) {
    napi_throw_range_error(env, NULL, "wm_blas.sgemv: dimensions do not fit the arrays");
    return NULL;
  }
  for (int64_t i = 0; i < batch; i++) {
    /* stored [M,K]: y = A x (NoTrans, rows M); stored [K,M]: y = A^T x (Trans, rows K) */
    if (d[3]) p_sgemv(101, 112, (int)K, (int)M, 1.0f, a + i * sa, (int)M, x + i * sx, 1, 0.0f, y + i * M, 1);
    else p_sgemv(101, 111, (int)M, (int)K, 1.0f, a + i * sa, (int)K, x + i * sx, 1, 0.0f, y + i * M, 1);
  }
  return NULL;
}

static napi_value module_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"init", NULL, init, NULL, NULL, NULL, napi_default, NULL},
    {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_default, NULL},
    {"sgemm", NULL, sgemm, NULL, NULL, NULL, napi_default, NULL},
    {"sgemv", NULL, sgemv, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, module_init)
