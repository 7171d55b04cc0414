/* Fused CPU kernels for the world model's hot spots, built once per machine by tdmpc2/cpu_kernels.py.
 *
 * LayerNorm+Mish (forward and backward) and SimNorm's group softmax are a third of a planning step or an update
 * on a CPU. PyTorch runs each as several passes over memory; these run one pass per row, and are called through
 * ctypes for a few microseconds (a torch.compile'd kernel costs 25-70 us a call in dynamo's guards and wrappers).
 *
 * Every kernel exists for float32 and bfloat16 storage (compute in float32). Rows are split over
 * `threads` OpenMP threads (torch's own runtime and thread count). Mish uses the exact identity
 * tanh(softplus(y)) = n / (n + 2), n = e^y (e^y + 2): one exp instead of exp, log1p and tanh.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define PAR_MIN 16384 /* below this many elements one thread is faster than waking the others */

static inline float load_f32(const float *p, int64_t i) { return p[i]; }
static inline void store_f32(float *p, int64_t i, float v) { p[i] = v; }
static inline float load_bf16(const uint16_t *p, int64_t i) {
    uint32_t u = (uint32_t)p[i] << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline void store_bf16(uint16_t *p, int64_t i, float v) { /* round to nearest even, as PyTorch */
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) { p[i] = (uint16_t)((u >> 16) | 0x40); return; } /* NaN stays NaN */
    p[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* h = x + c over one row of D; returns the row's mean (both LayerNorm directions start here). */
#define BIASED_ROW(NAME, T, LOAD)                                                                               \
    static inline float NAME(const T *x, const T *c, float *h, int64_t D) {                                     \
        float s = 0.f;                                                                                          \
        _Pragma("omp simd reduction(+ : s)") for (int64_t i = 0; i < D; i++) {                                  \
            h[i] = LOAD(x, i) + LOAD(c, i);                                                                     \
            s += h[i];                                                                                          \
        }                                                                                                       \
        return s / D;                                                                                           \
    }
BIASED_ROW(biased_row_f32, float, load_f32)
BIASED_ROW(biased_row_bf16, uint16_t, load_bf16)

/* x (E, N, D) + c (E, D) -> LayerNorm -> * w (E, D) + b (E, D) -> Mish -> out (E, N, D); rstd (E*N) = 1/std. */
#define LN_MISH_FWD(NAME, T, LOAD, STORE, ROW)                                                                       \
    void NAME(const T *x, const T *c, const T *w, const T *b, T *out, float *rstd, int64_t E, int64_t N,        \
              int64_t D, int threads) {                                                                         \
        _Pragma("omp parallel num_threads(threads) if (E * N * D >= PAR_MIN)") {                               \
            float *h = malloc(sizeof(float) * D);                                                               \
            _Pragma("omp for schedule(static)") for (int64_t r = 0; r < E * N; r++) {                           \
                int64_t e = r / N, o = r * D, p = e * D;                                                        \
                float mean = ROW(x + o, c + p, h, D), v = 0.f;                                                  \
                _Pragma("omp simd reduction(+ : v)") for (int64_t i = 0; i < D; i++) {                          \
                    float d = h[i] - mean;                                                                      \
                    v += d * d;                                                                                 \
                }                                                                                               \
                float rs = 1.0f / sqrtf(v / D + 1e-5f);                                                         \
                rstd[r] = rs;                                                                                   \
                _Pragma("omp simd") for (int64_t i = 0; i < D; i++) {                                           \
                    float y = (h[i] - mean) * rs * LOAD(w, p + i) + LOAD(b, p + i);                             \
                    float ey = expf(fminf(y, 20.0f)), n = ey * (ey + 2.0f);                                     \
                    STORE(out, o + i, y * n / (n + 2.0f));                                                      \
                }                                                                                               \
            }                                                                                                   \
            free(h);                                                                                            \
        }                                                                                                       \
    }

/* Gradients of the above for the output gradient g: gx (E, N, D), and gc, gw, gb (E, D) summed over rows
 * (per-thread partial sums, added in a fixed order: the result does not depend on scheduling). */
#define LN_MISH_BWD(NAME, T, LOAD, STORE, ROW)                                                                       \
    void NAME(const T *g, const T *x, const T *c, const T *w, const T *b, const float *rstd, T *gx, T *gc,      \
              T *gw, T *gb, int64_t E, int64_t N, int64_t D, int threads) {                                     \
        if (E * N * D < PAR_MIN) threads = 1;                                                                   \
        float *part = calloc((size_t)threads * 3 * E * D, sizeof(float)); /* [thread][gc, gw, gb][E][D] */      \
        _Pragma("omp parallel num_threads(threads)") {                                                          \
            float *hh = malloc(sizeof(float) * D), *gh = malloc(sizeof(float) * D);                             \
            float *acc = part + (size_t)thread_id() * 3 * E * D;                                                \
            _Pragma("omp for schedule(static)") for (int64_t r = 0; r < E * N; r++) {                           \
                int64_t e = r / N, o = r * D, p = e * D;                                                        \
                float *pc = acc + p, *pw = acc + E * D + p, *pb = acc + 2 * E * D + p;                          \
                float rs = rstd[r], mean = ROW(x + o, c + p, hh, D), m1 = 0.f, m2 = 0.f;                        \
                _Pragma("omp simd reduction(+ : m1, m2)") for (int64_t i = 0; i < D; i++) {                     \
                    float hat = (hh[i] - mean) * rs, wi = LOAD(w, p + i);                                       \
                    float y = hat * wi + LOAD(b, p + i);                                                        \
                    float ey = expf(fminf(y, 20.0f)), n = ey * (ey + 2.0f), t = n / (n + 2.0f);                 \
                    float gy = LOAD(g, o + i) * (t + y * (ey / (1.0f + ey)) * (1.0f - t * t));                  \
                    pw[i] += gy * hat;                                                                          \
                    pb[i] += gy;                                                                                \
                    hh[i] = hat;                                                                                \
                    gh[i] = gy * wi;                                                                            \
                    m1 += gh[i];                                                                                \
                    m2 += gh[i] * hat;                                                                          \
                }                                                                                               \
                m1 /= D;                                                                                        \
                m2 /= D;                                                                                        \
                _Pragma("omp simd") for (int64_t i = 0; i < D; i++) {                                           \
                    float v = rs * (gh[i] - m1 - hh[i] * m2);                                                   \
                    STORE(gx, o + i, v);                                                                        \
                    pc[i] += v;                                                                                 \
                }                                                                                               \
            }                                                                                                   \
            free(hh);                                                                                           \
            free(gh);                                                                                           \
        }                                                                                                       \
        for (int64_t k = 0; k < E * D; k++) {                                                                   \
            float sc = 0.f, sw = 0.f, sb = 0.f;                                                                 \
            for (int t = 0; t < threads; t++) {                                                                 \
                const float *a = part + (size_t)t * 3 * E * D;                                                  \
                sc += a[k];                                                                                     \
                sw += a[E * D + k];                                                                             \
                sb += a[2 * E * D + k];                                                                         \
            }                                                                                                   \
            STORE(gc, k, sc);                                                                                   \
            STORE(gw, k, sw);                                                                                   \
            STORE(gb, k, sb);                                                                                   \
        }                                                                                                       \
        free(part);                                                                                             \
    }

/* Softmax over each row of x (M, K): SimNorm's groups (K = 8, where PyTorch's kernel is slow). */
#define SOFTMAX_FWD(NAME, T, LOAD, STORE)                                                                       \
    void NAME(const T *x, T *y, int64_t M, int64_t K, int threads) {                                            \
        _Pragma("omp parallel for schedule(static) num_threads(threads) if (M * K >= PAR_MIN)")                 \
        for (int64_t m = 0; m < M; m++) {                                                                       \
            float v[64], mx = LOAD(x, m * K), s = 0.f; /* K <= 64, checked by the caller */                      \
            for (int64_t k = 0; k < K; k++) {                                                                   \
                v[k] = LOAD(x, m * K + k);                                                                      \
                mx = fmaxf(mx, v[k]);                                                                           \
            }                                                                                                   \
            for (int64_t k = 0; k < K; k++) {                                                                   \
                v[k] = expf(v[k] - mx);                                                                         \
                s += v[k];                                                                                      \
            }                                                                                                   \
            for (int64_t k = 0; k < K; k++) STORE(y, m * K + k, v[k] / s);                                      \
        }                                                                                                       \
    }

/* Its gradient: gx = y * (g - sum_k g y), from the output y. */
#define SOFTMAX_BWD(NAME, T, LOAD, STORE)                                                                       \
    void NAME(const T *g, const T *y, T *gx, int64_t M, int64_t K, int threads) {                               \
        _Pragma("omp parallel for schedule(static) num_threads(threads) if (M * K >= PAR_MIN)")                 \
        for (int64_t m = 0; m < M; m++) {                                                                       \
            float s = 0.f;                                                                                      \
            for (int64_t k = 0; k < K; k++) s += LOAD(g, m * K + k) * LOAD(y, m * K + k);                       \
            for (int64_t k = 0; k < K; k++)                                                                     \
                STORE(gx, m * K + k, LOAD(y, m * K + k) * (LOAD(g, m * K + k) - s));                            \
        }                                                                                                       \
    }

LN_MISH_FWD(ln_mish_fwd_f32, float, load_f32, store_f32, biased_row_f32)
LN_MISH_FWD(ln_mish_fwd_bf16, uint16_t, load_bf16, store_bf16, biased_row_bf16)
LN_MISH_BWD(ln_mish_bwd_f32, float, load_f32, store_f32, biased_row_f32)
LN_MISH_BWD(ln_mish_bwd_bf16, uint16_t, load_bf16, store_bf16, biased_row_bf16)
SOFTMAX_FWD(softmax_fwd_f32, float, load_f32, store_f32)
SOFTMAX_FWD(softmax_fwd_bf16, uint16_t, load_bf16, store_bf16)
SOFTMAX_BWD(softmax_bwd_f32, float, load_f32, store_f32)
SOFTMAX_BWD(softmax_bwd_bf16, uint16_t, load_bf16, store_bf16)
