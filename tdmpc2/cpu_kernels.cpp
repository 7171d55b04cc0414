// Fused CPU kernels for the world model's hot spots, registered as PyTorch operators in the `dream_mpc` namespace
// and built on first use by tdmpc2/cpu_kernels.py (torch.utils.cpp_extension; fake tensors and autograd are
// registered there, in Python).
//
//   dream_mpc::ln_mish(x, c, w, b) -> out                 Mish(LayerNorm(x + c) * w + b), one pass per row
//   dream_mpc::ln_mish_backward(g, x, c, w, b) -> (gx, gc, gw, gb)
//   dream_mpc::group_softmax(x) -> y                       softmax over a short last dim (SimNorm's groups of 8)
//   dream_mpc::group_softmax_backward(g, y) -> gx
//
// x is (E, N, D) with per-feature c, w, b of shape (E, D): E ensemble members, N rows each (E = 1 outside an
// ensemble); c is the bias of the linear layer that produced x, added here instead of by a separate pass.
// Storage is float32 or bfloat16 (computed in float32, rounded once). Rows are split over torch's intra-op threads
// (at::parallel_for). Compiled without -ffast-math: NaN and inf keep their IEEE meaning (a non-finite row stays
// non-finite, which the planners' fallback relies on); the loops vectorise through `omp simd` and a polynomial exp
// written as plain arithmetic. Mish uses the exact identity tanh(softplus(y)) = n / (n + 2), n = e^y (e^y + 2):
// one exp instead of exp, log1p and tanh.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <vector>

namespace {

constexpr int64_t kParallelMin = 16384;  // elements; below this one thread is faster than waking the others
constexpr int64_t kMaxGroup = 64;        // group_softmax's longest row

template <typename To, typename From>
inline To bits(From v) {
    To out;
    std::memcpy(&out, &v, sizeof(To));
    return out;
}

// float32 and bfloat16 storage; bfloat16 rounds to nearest even as PyTorch does, and a NaN stays a NaN.
template <typename T>
struct Io;
template <>
struct Io<float> {
    static inline float load(const float* p, int64_t i) { return p[i]; }
    static inline void store(float* p, int64_t i, float v) { p[i] = v; }
};
template <>
struct Io<uint16_t> {
    static inline float load(const uint16_t* p, int64_t i) { return bits<float>((uint32_t)p[i] << 16); }
    static inline void store(uint16_t* p, int64_t i, float v) {
        uint32_t u = bits<uint32_t>(v);
        uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet = (u >> 16) | 0x40u;
        p[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
    }
};

// e^x to ~1 ulp (range reduction by ln 2 in two parts, degree-6 polynomial, 2^k built from its bits), in plain
// arithmetic that vectorises without fast-math. Inputs are clamped to [-87, 88] (e^-87 stands in for smaller
// values); a NaN stays a NaN.
inline float exp_poly(float x) {
    float a = x < 88.0f ? x : 88.0f;
    a = a > -87.0f ? a : -87.0f;
    const float shift = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer held in the low bits
    float kf = a * 1.44269504088896341f + shift;
    int32_t k = bits<int32_t>(kf) - bits<int32_t>(shift);
    kf -= shift;
    float r = a - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    float e = p * bits<float>((int32_t)((k + 127) << 23));
    return x != x ? x : e;
}

// h = x + c over one row of D; returns the row's mean (both directions of LayerNorm start here).
template <typename T>
inline float biased_row(const T* x, const T* c, float* h, int64_t D) {
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < D; i++) {
        h[i] = Io<T>::load(x, i) + Io<T>::load(c, i);
        s += h[i];
    }
    return s / (float)D;
}

inline float inv_std(const float* h, float mean, int64_t D) {
    float v = 0.f;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < D; i++) {
        float d = h[i] - mean;
        v += d * d;
    }
    return 1.0f / std::sqrt(v / (float)D + 1e-5f);
}

inline int64_t grain_rows(int64_t D) { return std::max<int64_t>(1, kParallelMin / 2 / std::max<int64_t>(D, 1)); }

template <typename T>
void ln_mish_fwd(const T* x, const T* c, const T* w, const T* b, T* out, int64_t E, int64_t N, int64_t D) {
    at::parallel_for(0, E * N, grain_rows(D), [&](int64_t begin, int64_t end) {
        std::vector<float> buf(D);
        float* h = buf.data();
        for (int64_t r = begin; r < end; r++) {
            int64_t o = r * D, p = (r / N) * D;
            float mean = biased_row(x + o, c + p, h, D), rs = inv_std(h, mean, D);
#pragma omp simd
            for (int64_t i = 0; i < D; i++) {
                float y = (h[i] - mean) * rs * Io<T>::load(w, p + i) + Io<T>::load(b, p + i);
                float ey = exp_poly(y < 20.0f ? y : 20.0f), n = ey * (ey + 2.0f);
                Io<T>::store(out, o + i, y * n / (n + 2.0f));
            }
        }
    });
}

// Gradients for the output gradient g: gx (E, N, D), and gc, gw, gb (E, D) summed over rows, in per-chunk partial
// sums added in a fixed order (the result does not depend on scheduling).
template <typename T>
void ln_mish_bwd(const T* g, const T* x, const T* c, const T* w, const T* b, T* gx, T* gc, T* gw, T* gb, int64_t E,
                 int64_t N, int64_t D) {
    const int64_t rows = E * N, ED = E * D;
    const int64_t chunks = rows * D >= kParallelMin ? std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), rows)) : 1;
    std::vector<float> part((size_t)(chunks * 3 * ED), 0.f);  // [chunk][gc, gw, gb][E][D]
    at::parallel_for(0, chunks, 1, [&](int64_t first, int64_t last) {
        std::vector<float> buf(2 * D);
        float *hh = buf.data(), *gh = buf.data() + D;
        for (int64_t k = first; k < last; k++) {
            float* acc = part.data() + k * 3 * ED;
            for (int64_t r = rows * k / chunks; r < rows * (k + 1) / chunks; r++) {
                int64_t o = r * D, p = (r / N) * D;
                float *pc = acc + p, *pw = acc + ED + p, *pb = acc + 2 * ED + p;
                float mean = biased_row(x + o, c + p, hh, D), rs = inv_std(hh, mean, D), m1 = 0.f, m2 = 0.f;
                // three simple loops rather than one: each vectorises (the fused loop did not, 3-4x slower)
#pragma omp simd
                for (int64_t i = 0; i < D; i++) hh[i] = (hh[i] - mean) * rs;  // the normalised row
#pragma omp simd
                for (int64_t i = 0; i < D; i++) {  // gy: the gradient at Mish's input
                    float y = hh[i] * Io<T>::load(w, p + i) + Io<T>::load(b, p + i);
                    float ey = exp_poly(y < 20.0f ? y : 20.0f), n = ey * (ey + 2.0f), t = n / (n + 2.0f);
                    gh[i] = Io<T>::load(g, o + i) * (t + y * (ey / (1.0f + ey)) * (1.0f - t * t));
                }
#pragma omp simd reduction(+ : m1, m2)
                for (int64_t i = 0; i < D; i++) {
                    float gy = gh[i], gn = gy * Io<T>::load(w, p + i);
                    pw[i] += gy * hh[i];
                    pb[i] += gy;
                    gh[i] = gn;
                    m1 += gn;
                    m2 += gn * hh[i];
                }
                m1 /= (float)D;
                m2 /= (float)D;
#pragma omp simd
                for (int64_t i = 0; i < D; i++) {
                    float v = rs * (gh[i] - m1 - hh[i] * m2);
                    Io<T>::store(gx, o + i, v);
                    pc[i] += v;
                }
            }
        }
    });
    for (int64_t k = 0; k < ED; k++) {
        float sc = 0.f, sw = 0.f, sb = 0.f;
        for (int64_t t = 0; t < chunks; t++) {
            const float* a = part.data() + t * 3 * ED;
            sc += a[k];
            sw += a[ED + k];
            sb += a[2 * ED + k];
        }
        Io<T>::store(gc, k, sc);
        Io<T>::store(gw, k, sw);
        Io<T>::store(gb, k, sb);
    }
}

// Groups are short (SimNorm's 8), too short for a vector each: the exps of a whole chunk of rows run as one long
// loop that vectorises (5x faster than an exp loop per row), and a group of 8 is a compile-time length, so its max,
// sum and scaling unroll (another 1.5x).
template <typename T, int64_t KC>
void softmax_fwd_rows(const T* x, T* y, int64_t M, int64_t K_) {
    const int64_t K = KC ? KC : K_;
    at::parallel_for(0, M, grain_rows(K), [&](int64_t begin, int64_t end) {
        const int64_t n = (end - begin) * K;
        std::vector<float> buf(n);
        float* v = buf.data();
        for (int64_t m = begin; m < end; m++) {
            const T* xr = x + m * K;
            float* vr = v + (m - begin) * K;
            float mx = Io<T>::load(xr, 0);
            for (int64_t k = 0; k < K; k++) {
                vr[k] = Io<T>::load(xr, k);
                mx = vr[k] > mx ? vr[k] : mx;  // a NaN first stays the max; a NaN later reaches exp below
            }
            for (int64_t k = 0; k < K; k++) vr[k] -= mx;  // +inf: inf - inf = NaN, the group is non-finite
        }
#pragma omp simd
        for (int64_t i = 0; i < n; i++) v[i] = exp_poly(v[i]);
        for (int64_t m = begin; m < end; m++) {
            const float* vr = v + (m - begin) * K;
            float s = 0.f;
            for (int64_t k = 0; k < K; k++) s += vr[k];
            const float inv = 1.f / s;
            for (int64_t k = 0; k < K; k++) Io<T>::store(y, m * K + k, vr[k] * inv);
        }
    });
}

template <typename T>
void softmax_fwd(const T* x, T* y, int64_t M, int64_t K) {
    if (K == 8)
        softmax_fwd_rows<T, 8>(x, y, M, K);
    else
        softmax_fwd_rows<T, 0>(x, y, M, K);
}

template <typename T>
void softmax_bwd(const T* g, const T* y, T* gx, int64_t M, int64_t K) {
    at::parallel_for(0, M, grain_rows(K), [&](int64_t begin, int64_t end) {
        for (int64_t m = begin; m < end; m++) {
            int64_t o = m * K;
            float s = 0.f;
            for (int64_t k = 0; k < K; k++) s += Io<T>::load(g, o + k) * Io<T>::load(y, o + k);
            for (int64_t k = 0; k < K; k++) Io<T>::store(gx, o + k, Io<T>::load(y, o + k) * (Io<T>::load(g, o + k) - s));
        }
    });
}

void check_storage(const at::Tensor& t, const char* name, const at::Tensor& like) {
    TORCH_CHECK(t.device().is_cpu(), "dream_mpc: ", name, " must be a CPU tensor, got ", t.device());
    TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16,
                "dream_mpc: ", name, " must be float32 or bfloat16, got ", t.scalar_type());
    TORCH_CHECK(t.scalar_type() == like.scalar_type(), "dream_mpc: ", name, " has dtype ", t.scalar_type(),
                ", expected ", like.scalar_type(), " (all inputs share one dtype)");
    TORCH_CHECK(t.is_contiguous(), "dream_mpc: ", name, " must be contiguous");
}

void check_ln_mish(const at::Tensor& x, const at::Tensor& c, const at::Tensor& w, const at::Tensor& b) {
    TORCH_CHECK(x.dim() == 3, "dream_mpc::ln_mish: x must be (E, N, D), got ", x.sizes());
    TORCH_CHECK(x.size(2) > 0, "dream_mpc::ln_mish: D must be positive");
    const char* names[] = {"c", "w", "b"};
    const at::Tensor* per_feature[] = {&c, &w, &b};
    check_storage(x, "x", x);
    for (int i = 0; i < 3; i++) {
        const at::Tensor& t = *per_feature[i];
        TORCH_CHECK(t.dim() == 2 && t.size(0) == x.size(0) && t.size(1) == x.size(2), "dream_mpc::ln_mish: ",
                    names[i], " must be (E, D) = (", x.size(0), ", ", x.size(2), "), got ", t.sizes());
        check_storage(t, names[i], x);
    }
}

#define DISPATCH_STORAGE(DTYPE, ...)                          \
    if ((DTYPE) == at::kFloat) {                              \
        using scalar = float;                                 \
        __VA_ARGS__();                                        \
    } else {                                                  \
        using scalar = uint16_t;                              \
        __VA_ARGS__();                                        \
    }

template <typename S>
S* ptr(const at::Tensor& t) {
    return reinterpret_cast<S*>(t.data_ptr());
}

at::Tensor ln_mish(const at::Tensor& x, const at::Tensor& c, const at::Tensor& w, const at::Tensor& b) {
    check_ln_mish(x, c, w, b);
    at::Tensor out = at::empty_like(x);
    DISPATCH_STORAGE(x.scalar_type(), [&] {
        ln_mish_fwd<scalar>(ptr<scalar>(x), ptr<scalar>(c), ptr<scalar>(w), ptr<scalar>(b), ptr<scalar>(out),
                            x.size(0), x.size(1), x.size(2));
    });
    return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> ln_mish_backward(const at::Tensor& g, const at::Tensor& x,
                                                                           const at::Tensor& c, const at::Tensor& w,
                                                                           const at::Tensor& b) {
    check_ln_mish(x, c, w, b);
    TORCH_CHECK(g.sizes() == x.sizes(), "dream_mpc::ln_mish_backward: grad must have x's shape ", x.sizes(),
                ", got ", g.sizes());
    check_storage(g, "grad", x);
    at::Tensor gx = at::empty_like(x), gc = at::empty_like(c), gw = at::empty_like(w), gb = at::empty_like(b);
    DISPATCH_STORAGE(x.scalar_type(), [&] {
        ln_mish_bwd<scalar>(ptr<scalar>(g), ptr<scalar>(x), ptr<scalar>(c), ptr<scalar>(w), ptr<scalar>(b),
                            ptr<scalar>(gx), ptr<scalar>(gc), ptr<scalar>(gw), ptr<scalar>(gb), x.size(0), x.size(1),
                            x.size(2));
    });
    return {gx, gc, gw, gb};
}

void check_group(const at::Tensor& x, const char* op) {
    TORCH_CHECK(x.dim() >= 1 && x.size(-1) >= 1 && x.size(-1) <= kMaxGroup, "dream_mpc::", op,
                ": the last dim (the group) must be 1..", kMaxGroup, ", got shape ", x.sizes());
}

at::Tensor group_softmax(const at::Tensor& x) {
    check_group(x, "group_softmax");
    check_storage(x, "x", x);
    at::Tensor y = at::empty_like(x);
    const int64_t K = x.size(-1), M = K ? x.numel() / K : 0;
    DISPATCH_STORAGE(x.scalar_type(), [&] { softmax_fwd<scalar>(ptr<scalar>(x), ptr<scalar>(y), M, K); });
    return y;
}

at::Tensor group_softmax_backward(const at::Tensor& g, const at::Tensor& y) {
    check_group(y, "group_softmax_backward");
    check_storage(y, "y", y);
    TORCH_CHECK(g.sizes() == y.sizes(), "dream_mpc::group_softmax_backward: grad must have y's shape ", y.sizes(),
                ", got ", g.sizes());
    check_storage(g, "grad", y);
    at::Tensor gx = at::empty_like(y);
    const int64_t K = y.size(-1), M = K ? y.numel() / K : 0;
    DISPATCH_STORAGE(y.scalar_type(), [&] { softmax_bwd<scalar>(ptr<scalar>(g), ptr<scalar>(y), ptr<scalar>(gx), M, K); });
    return gx;
}

}  // namespace

TORCH_LIBRARY(dream_mpc, m) {
    m.def("ln_mish(Tensor x, Tensor c, Tensor w, Tensor b) -> Tensor");
    m.def("ln_mish_backward(Tensor grad, Tensor x, Tensor c, Tensor w, Tensor b) -> (Tensor, Tensor, Tensor, Tensor)");
    m.def("group_softmax(Tensor x) -> Tensor");
    m.def("group_softmax_backward(Tensor grad, Tensor y) -> Tensor");
}

TORCH_LIBRARY_IMPL(dream_mpc, CPU, m) {
    m.impl("ln_mish", &ln_mish);
    m.impl("ln_mish_backward", &ln_mish_backward);
    m.impl("group_softmax", &group_softmax);
    m.impl("group_softmax_backward", &group_softmax_backward);
}
