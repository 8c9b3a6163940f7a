// thaw/simd/gemm.h — single-precision matrix products, row-major.
//
//   // Y[batch x out] = X[batch x in] · W[out x in]^T
//   const size_t floats = thaw::simd::GemmScratchFloats(batch, out, in,
//                                                       pool.num_threads());
//   float* scratch = ...;  // 64-byte aligned, `floats` floats (in thaw, from
//                          // the arena's transient scratch region)
//   thaw::simd::Gemm(x, in, false, w, in, true, y, out, batch, out, in,
//                    /*accumulate=*/false, scratch, pool);
//
// C[m x n] (+)= op(A) · op(B), where op(A) is m x k and op(B) is k x n:
//   trans_a == false: A is m x k, element (i, p) at a[i * lda + p];
//   trans_a == true:  A is k x m, element (i, p) at a[p * lda + i];
//   trans_b == false: B is k x n, element (p, j) at b[p * ldb + j];
//   trans_b == true:  B is n x k, element (p, j) at b[j * ldb + p].
// accumulate == false overwrites C without reading it (C may hold NaN);
// true adds to it. C must not overlap A, B or the scratch.
//
// Memory: Gemm allocates nothing. The packing buffers come from the caller:
// `scratch` must be 64-byte aligned and hold GemmScratchFloats(m, n, k,
// pool.num_threads()) floats (any transposes), or the layout's own size
// (the overload with trans_a, trans_b); its contents are clobbered
// and need no initialisation. The size depends on the SIMD target (its
// lanes and GEMM tiles, the plain data of simd/target_shapes.h): the query
// answers for the target the kernels dispatch to, or for the planning
// target of simd/targets.h (any target, on any CPU: no target code runs).
//
// Threads and bits: C is split into blocks of whole register tiles and K is
// never split, so results are the same bits for any thread count (they do
// differ between SIMD targets: FMA or not). Products below 2^20
// multiply-adds run on the calling thread.
#ifndef THAW_SIMD_GEMM_H_
#define THAW_SIMD_GEMM_H_

#include <cstddef>

#include "platform/threads.h"

namespace thaw {
namespace simd {

// Floats of scratch Gemm needs for an m x n x k product on `num_threads`
// threads, with any transposes. 0 when m, n or k is 0, and possibly for
// other small products; then `scratch` may be null. Sizes on x86 AVX2, 2
// threads: ~8-300 KiB for the layers of a 784-256-128-10 MLP at batch 64,
// 0.8 MiB at 512^3, 1.3 MiB at 1024^3 (R blocks of at most 256 x 2048).
size_t GemmScratchFloats(size_t m, size_t n, size_t k, int num_threads);
// The scratch of one layout: what Gemm with these transposes uses, at most
// the above. Planners that know the layout ask this one.
size_t GemmScratchFloats(size_t m, size_t n, size_t k, bool trans_a,
                         bool trans_b, int num_threads);

// What Gemm does to C once the product (and any accumulation) is complete:
//   C[i, j] = f(((C[i, j] + bias[j]) - mean[j]) * scale[j] + shift[j])
// (each step only when its pointers are set: bias; mean, scale and shift
// together, a folded inference-mode batch normalization), block by block,
// on the thread that computed the block, while it is still in cache; a dense
// layer's forward pass in one sweep over its output. The bits equal those of
// simd::Add, simd::BatchNormApply, then the matching kernel of
// simd/elementwise.h or simd/activation.h (ReluForward, Relu6Forward,
// SigmoidForward, TanhForward). The default does nothing.
enum class GemmActivation { kNone, kRelu, kRelu6, kSigmoid, kTanh };
struct GemmEpilogue {
  const float* bias = nullptr;  // n floats, or null
  const float* mean = nullptr;  // n floats each, all or none
  const float* scale = nullptr;
  const float* shift = nullptr;
  GemmActivation activation = GemmActivation::kNone;
};

void Gemm(const float* a, size_t lda, bool trans_a, const float* b, size_t ldb,
          bool trans_b, float* c, size_t ldc, size_t m, size_t n, size_t k,
          bool accumulate, float* scratch, ThreadPool& pool,
          const GemmEpilogue& epilogue = GemmEpilogue());

namespace internal {
// For simd/conv.cc: a stride-1 convolution read straight from a zero-padded
// image (simd/gemm-inl.h's ConvImageT). The weights W[K x cout] packed into
// the microkernel's column panels: ConvWeightPanelsFloats floats (for the
// dispatched or planning target), 64-byte aligned.
size_t ConvWeightPanelsFloats(size_t k, size_t cout);
void PackConvWeights(const float* w, size_t k, size_t cout, float* panels);
// Pixels the image must stay readable past its end (a short tile's rows):
// register tiles have at most 8 rows on every target.
constexpr size_t kConvImageSlackPixels = 8;
// y[out_h x out_w x cout] of one image or band of rows: `padded` holds
// (out_h + kernel_h - 1) rows of padded_w = out_w + kernel_w - 1 pixels of
// cin floats, then kConvImageSlackPixels readable pixels.
void ConvImage(const float* padded, size_t padded_w, size_t cin, size_t kernel_h,
               size_t kernel_w, const float* panels, size_t cout, float* y, size_t out_h,
               size_t out_w, const GemmEpilogue& epilogue);
// Its weight gradient over a band of `pixels` virtual outputs (padded_w a
// row; dy zero on the columns past the true width): dw[KH, KW, cin, cout]
// (+)= per kernel row, the taps' runs in `padded` times dy, in pixel order.
// dy must be readable for ConvWeightSlackFloats() past its end (NR of the
// dispatched or planning target).
size_t ConvWeightSlackFloats();
void ConvWeightBand(const float* padded, size_t padded_w, size_t cin, size_t kernel_h,
                    size_t kernel_w, const float* dy, size_t cout, size_t pixels, float* dw,
                    bool add);
}  // namespace internal

}  // namespace simd
}  // namespace thaw

#endif  // THAW_SIMD_GEMM_H_
