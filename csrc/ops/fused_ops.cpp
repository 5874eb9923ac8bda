// Fused CPU inference kernels of the symgnn models, registered as TorchScript
// operators `symgnn::egat_edges` and `symgnn::painn_message`.
//
// The PyTorch versions of these layers gather node rows onto edges, run a few
// elementwise ops on [E, width] tensors and scatter the result back: memory
// traffic dominates. Here every receiver's incoming edges are processed by one
// thread, start to finish, in edge order; nothing of width E x W is
// materialized. Same input gives the same output bit for bit whatever the
// thread count. No autograd: the models call these only for inference
// (eval mode, gradients off), and fall back to plain PyTorch otherwise.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/Optional.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

// AVX2+FMA and baseline versions of the per-receiver kernels, picked at load
// time (the loops are written for the compiler to vectorize).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SYMGNN_KERNEL __attribute__((target_clones("arch=x86-64-v3", "default"), noinline))
#else
#define SYMGNN_KERNEL
#endif

namespace {

using at::Tensor;

// Incoming edges of every receiver: edges of node i are order[start[i] .. start[i+1]).
struct ReceiverRows {
  std::vector<int64_t> start;
  std::vector<int64_t> order; // empty when edges are already sorted by receiver
  int64_t edge(int64_t t) const { return order.empty() ? t : order[static_cast<size_t>(t)]; }
};

void check_indices(const char *op, const int64_t *idx, int64_t n_edges, int64_t n_nodes,
                   const char *row) {
  for (int64_t k = 0; k < n_edges; ++k) {
    const int64_t v = idx[k];
    TORCH_CHECK(v >= 0 && v < n_nodes, op, ": edge_index[", row, "][", k, "] = ", v,
                " is not a node index: it must lie in [0, ", n_nodes, ")");
  }
}

ReceiverRows receiver_rows(const int64_t *dst, int64_t n_edges, int64_t n_nodes) {
  ReceiverRows rows;
  rows.start.assign(static_cast<size_t>(n_nodes) + 1, 0);
  bool sorted = true;
  for (int64_t k = 0; k < n_edges; ++k) {
    rows.start[static_cast<size_t>(dst[k]) + 1] += 1;
    if (k > 0 && dst[k] < dst[k - 1])
      sorted = false;
  }
  for (int64_t i = 0; i < n_nodes; ++i)
    rows.start[i + 1] += rows.start[i];
  if (!sorted) { // stable counting sort by receiver
    rows.order.resize(static_cast<size_t>(n_edges));
    std::vector<int64_t> next(rows.start.begin(), rows.start.end() - 1);
    for (int64_t k = 0; k < n_edges; ++k)
      rows.order[static_cast<size_t>(next[dst[k]]++)] = k;
  }
  return rows;
}

Tensor checked(const char *op, const char *name, const Tensor &t, std::vector<int64_t> shape) {
  TORCH_CHECK(t.device().is_cpu(), op, ": `", name, "` must be a CPU tensor, got device ",
              t.device());
  TORCH_CHECK(t.scalar_type() == at::kFloat, op, ": `", name, "` must be float32, got ",
              t.scalar_type());
  TORCH_CHECK(t.sizes().vec() == shape, op, ": `", name, "` must have shape ",
              at::IntArrayRef(shape), ", got ", t.sizes());
  return t.contiguous();
}

Tensor checked_index(const char *op, const Tensor &edge_index) {
  TORCH_CHECK(edge_index.device().is_cpu() && edge_index.scalar_type() == at::kLong &&
                  edge_index.dim() == 2 && edge_index.size(0) == 2,
              op, ": edge_index must be a CPU int64 tensor of shape [2, E], got ",
              edge_index.scalar_type(), " ", edge_index.sizes(), " on ", edge_index.device());
  return edge_index.contiguous();
}

const float *optional_weight(const char *op, const c10::optional<Tensor> &w, int64_t n_edges,
                             Tensor &keep) {
  if (!w.has_value())
    return nullptr;
  keep = checked(op, "edge_weight", *w, {n_edges});
  return keep.data_ptr<float>();
}

// The checked edge list of an operator call: senders, optional weights and the
// receivers' rows. `per_edge` names the per-edge input whose row count is E.
struct Edges {
  Tensor index, weight_keep;
  const int64_t *src = nullptr;
  const float *weight = nullptr;
  ReceiverRows rows;

  Edges(const char *op, const Tensor &edge_index, const c10::optional<Tensor> &edge_weight,
        int64_t n_edges, int64_t n_nodes, const char *per_edge)
      : index(checked_index(op, edge_index)) {
    TORCH_CHECK(index.size(1) == n_edges, op, ": edge_index has ", index.size(1), " edges but ",
                per_edge, " has ", n_edges);
    weight = optional_weight(op, edge_weight, n_edges, weight_keep);
    src = index.data_ptr<int64_t>();
    const int64_t *dst = src + n_edges;
    check_indices(op, src, n_edges, n_nodes, "0");
    check_indices(op, dst, n_edges, n_nodes, "1");
    rows = receiver_rows(dst, n_edges, n_nodes);
  }
};

// ------------------------------------------------------------------ EGAT
struct EgatArgs {
  int64_t width, heads, head_dim, edge_dim;
  const float *p;      // [N, 3W]: receiver part, sender part, value
  const float *e;      // [E, De]
  const int64_t *src;  // [E]
  const float *w_eT;   // [De, W] (edge_proj weight, transposed)
  const float *attn;   // [W] (heads x head_dim)
  const float *w_oT;   // [W, De] (edge_out weight, transposed)
  const float *b_out;  // [De]
  const float *ln_w;   // [De]
  const float *ln_b;   // [De]
  const float *weight; // [E] or null
  float ln_eps, slope;
  float *agg;   // [N, W]
  float *e_new; // [E, De], or null: no edge update
};

// out[m][N] += in[m][K] . wt[K][N] for row-major scratch blocks. The fixed-size
// version keeps a 4-row x 16-column tile in registers (GCC vector extensions,
// so it compiles to AVX2+FMA in the x86-64-v3 clone and to SSE otherwise).
typedef float v8f __attribute__((vector_size(32)));

__attribute__((always_inline)) inline v8f load8(const float *p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

__attribute__((always_inline)) inline void store8(float *p, v8f v) {
  __builtin_memcpy(p, &v, sizeof(v));
}

template <int R, int64_t K, int64_t N>
__attribute__((always_inline)) inline void
gemm_tile(const float *__restrict in, const float *__restrict wt, float *__restrict out) {
  for (int64_t nb = 0; nb < N; nb += 16) {
    v8f acc[R][2];
    for (int r = 0; r < R; ++r) {
      acc[r][0] = load8(out + r * N + nb);
      acc[r][1] = load8(out + r * N + nb + 8);
    }
    for (int64_t k = 0; k < K; ++k) {
      const v8f w0 = load8(wt + k * N + nb), w1 = load8(wt + k * N + nb + 8);
      for (int r = 0; r < R; ++r) {
        const float x = in[r * K + k];
        acc[r][0] += x * w0;
        acc[r][1] += x * w1;
      }
    }
    for (int r = 0; r < R; ++r) {
      store8(out + r * N + nb, acc[r][0]);
      store8(out + r * N + nb + 8, acc[r][1]);
    }
  }
}

template <int64_t K, int64_t N>
__attribute__((always_inline)) inline void gemm_rows(int64_t m, const float *__restrict in,
                                                     const float *__restrict wt,
                                                     float *__restrict out, int64_t, int64_t) {
  static_assert(N % 16 == 0, "fixed-size rows need N % 16 == 0");
  int64_t r = 0;
  for (; r + 4 <= m; r += 4)
    gemm_tile<4, K, N>(in + r * K, wt, out + r * N);
  for (; r < m; ++r)
    gemm_tile<1, K, N>(in + r * K, wt, out + r * N);
}

template <>
__attribute__((always_inline)) inline void
gemm_rows<0, 0>(int64_t m, const float *__restrict in, const float *__restrict wt,
                float *__restrict out, int64_t K, int64_t N) {
  for (int64_t r = 0; r < m; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const float x = in[r * K + k];
      for (int64_t n = 0; n < N; ++n)
        out[r * N + n] += x * wt[k * N + n];
    }
}

// Per-thread scratch of the EGAT kernel, sized for the largest receiver seen.
struct EgatScratch {
  std::vector<float> e, f, out, logit;
  void reserve(int64_t deg, int64_t W, int64_t De, int64_t H) {
    if (static_cast<int64_t>(logit.size()) >= deg * H && static_cast<int64_t>(f.size()) >= deg * W)
      return;
    e.resize(static_cast<size_t>(deg * De));
    f.resize(static_cast<size_t>(deg * W));
    out.resize(static_cast<size_t>(deg * De));
    logit.resize(static_cast<size_t>(deg * H));
  }
};

// One receiver: attention features of its edges, softmax per head, aggregate,
// and the edge update e' = LayerNorm(e + W_out f + b_out). W_ and De_ fix the
// widths at compile time (0: read them from `a`).
template <int64_t W_, int64_t De_>
__attribute__((always_inline)) inline void
egat_receiver(const EgatArgs &a, const ReceiverRows &rows, int64_t i, EgatScratch &sc) {
  const int64_t W = W_ ? W_ : a.width, De = De_ ? De_ : a.edge_dim;
  const int64_t H = a.heads, D = a.head_dim;
  const int64_t t0 = rows.start[i], deg = rows.start[i + 1] - t0;
  float *__restrict acc = a.agg + i * W;
  std::fill(acc, acc + W, 0.0f);
  if (deg == 0)
    return;
  sc.reserve(deg, W, De, H);
  float *__restrict eb = sc.e.data();
  float *__restrict f = sc.f.data();
  float *__restrict out = sc.out.data();
  float *__restrict logit = sc.logit.data();
  const float *__restrict p_dst = a.p + i * 3 * W;
  const float *__restrict attn = a.attn;
  const float *__restrict b_out = a.b_out;
  const float *__restrict ln_w = a.ln_w;
  const float *__restrict ln_b = a.ln_b;
  const float slope = a.slope, ln_eps = a.ln_eps;

  // f = p_dst(i) + p_src(j) + W_e e, then LeakyReLU and the logits per head
  for (int64_t t = 0; t < deg; ++t) {
    const int64_t k = rows.edge(t0 + t);
    if (t + 4 < deg) { // senders' rows are scattered: fetch a few edges ahead
      const float *ahead = a.p + a.src[rows.edge(t0 + t + 4)] * 3 * W + W;
      for (int64_t l = 0; l < 2 * W; l += 16)
        __builtin_prefetch(ahead + l);
    }
    const float *__restrict p_src = a.p + a.src[k] * 3 * W + W;
    const float *__restrict ek = a.e + k * De;
    for (int64_t o = 0; o < W; ++o)
      f[t * W + o] = p_dst[o] + p_src[o];
    for (int64_t c = 0; c < De; ++c)
      eb[t * De + c] = ek[c];
  }
  gemm_rows<De_, W_>(deg, eb, a.w_eT, f, De, W);
  for (int64_t t = 0; t < deg; ++t) {
    float *__restrict fk = f + t * W;
    for (int64_t o = 0; o < W; ++o) // leaky ReLU, branch-free
      fk[o] = std::max(fk[o], 0.0f) + slope * std::min(fk[o], 0.0f);
    for (int64_t h = 0; h < H; ++h) {
      float s = 0.0f;
      for (int64_t d = 0; d < D; ++d)
        s += fk[h * D + d] * attn[h * D + d];
      logit[t * H + h] = s;
    }
  }
  // edge update: LayerNorm(e + b_out + W_out f) (skipped when nothing reads it)
  if (a.e_new != nullptr) {
    for (int64_t t = 0; t < deg; ++t)
      for (int64_t c = 0; c < De; ++c)
        out[t * De + c] = b_out[c] + eb[t * De + c];
    gemm_rows<W_, De_>(deg, f, a.w_oT, out, W, De);
    for (int64_t t = 0; t < deg; ++t) {
      const float *__restrict o = out + t * De;
      float mean = 0.0f;
      for (int64_t c = 0; c < De; ++c)
        mean += o[c];
      mean /= static_cast<float>(De);
      float var = 0.0f;
      for (int64_t c = 0; c < De; ++c) {
        const float d = o[c] - mean;
        var += d * d;
      }
      const float inv = 1.0f / std::sqrt(var / static_cast<float>(De) + ln_eps);
      float *__restrict en = a.e_new + rows.edge(t0 + t) * De;
      for (int64_t c = 0; c < De; ++c)
        en[c] = (o[c] - mean) * inv * ln_w[c] + ln_b[c];
    }
  }
  // softmax over the receiver's edges, per head
  for (int64_t h = 0; h < H; ++h) {
    float mx = -INFINITY;
    for (int64_t t = 0; t < deg; ++t)
      mx = std::max(mx, logit[t * H + h]);
    float den = 0.0f;
    for (int64_t t = 0; t < deg; ++t) {
      const float x = std::exp(logit[t * H + h] - mx);
      logit[t * H + h] = x;
      den += x;
    }
    for (int64_t t = 0; t < deg; ++t) {
      float alpha = logit[t * H + h] / den;
      if (a.weight != nullptr)
        alpha *= a.weight[rows.edge(t0 + t)];
      logit[t * H + h] = alpha;
    }
  }
  for (int64_t t = 0; t < deg; ++t) {
    const int64_t k = rows.edge(t0 + t);
    const float *__restrict value = a.p + a.src[k] * 3 * W + 2 * W;
    const float *__restrict fk = f + t * W;
    for (int64_t h = 0; h < H; ++h) {
      const float alpha = logit[t * H + h];
      for (int64_t d = 0; d < D; ++d) {
        const int64_t o = h * D + d;
        acc[o] += alpha * (value[o] + fk[o]);
      }
    }
  }
}

// Receivers [begin, end): the fixed-width kernel for the shipped sizes, else the generic one.
SYMGNN_KERNEL void egat_range(const EgatArgs &a, const ReceiverRows &rows, int64_t begin,
                              int64_t end) {
  EgatScratch sc;
  if (a.width == 64 && a.edge_dim == 32) {
    for (int64_t i = begin; i < end; ++i)
      egat_receiver<64, 32>(a, rows, i, sc);
  } else {
    for (int64_t i = begin; i < end; ++i)
      egat_receiver<0, 0>(a, rows, i, sc);
  }
}

std::tuple<Tensor, Tensor> egat_edges(const Tensor &p, const Tensor &e, const Tensor &edge_index,
                                      const Tensor &w_edge, const Tensor &attn, const Tensor &w_out,
                                      const Tensor &b_out, const Tensor &ln_weight,
                                      const Tensor &ln_bias, double ln_eps, double negative_slope,
                                      const c10::optional<Tensor> &edge_weight, bool update_edges) {
  const char *op = "symgnn::egat_edges";
  TORCH_CHECK(p.dim() == 2 && p.size(1) % 3 == 0, op,
              ": p must be [N, 3*width] (receiver, sender and value projections), got ", p.sizes());
  TORCH_CHECK(e.dim() == 2, op, ": e must be [E, edge_dim], got ", e.sizes());
  TORCH_CHECK(attn.dim() == 2, op, ": attn must be [heads, head_dim], got ", attn.sizes());
  const int64_t n = p.size(0), W = p.size(1) / 3, n_edges = e.size(0), De = e.size(1);
  const int64_t H = attn.size(0), D = attn.size(1);
  TORCH_CHECK(H * D == W, op, ": attn is [", H, ", ", D, "] but the width of p is ", W);
  TORCH_CHECK(De <= 256, op, ": edge_dim must be <= 256, got ", De);
  const Tensor pc = checked(op, "p", p, {n, 3 * W});
  const Tensor ec = checked(op, "e", e, {n_edges, De});
  const Tensor w_eT = checked(op, "w_edge", w_edge, {W, De}).t().contiguous();
  const Tensor attn_c = checked(op, "attn", attn, {H, D});
  const Tensor w_oT = checked(op, "w_out", w_out, {De, W}).t().contiguous();
  const Tensor b_c = checked(op, "b_out", b_out, {De});
  const Tensor lnw = checked(op, "ln_weight", ln_weight, {De});
  const Tensor lnb = checked(op, "ln_bias", ln_bias, {De});
  const Edges edges(op, edge_index, edge_weight, n_edges, n, "e");
  const ReceiverRows &rows = edges.rows;

  Tensor agg = at::empty({n, W}, pc.options());
  // without the edge update (the last layer), e comes back unchanged
  Tensor e_new = update_edges ? at::empty({n_edges, De}, pc.options()) : e;
  const EgatArgs a{W,
                   H,
                   D,
                   De,
                   pc.data_ptr<float>(),
                   ec.data_ptr<float>(),
                   edges.src,
                   w_eT.data_ptr<float>(),
                   attn_c.data_ptr<float>(),
                   w_oT.data_ptr<float>(),
                   b_c.data_ptr<float>(),
                   lnw.data_ptr<float>(),
                   lnb.data_ptr<float>(),
                   edges.weight,
                   static_cast<float>(ln_eps),
                   static_cast<float>(negative_slope),
                   agg.data_ptr<float>(),
                   update_edges ? e_new.data_ptr<float>() : nullptr};
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) { egat_range(a, rows, begin, end); });
  return {agg, e_new};
}

// ------------------------------------------------------------------ PaiNN
struct PainnArgs {
  int64_t channels, n_rbf;
  const float *phi;    // [N, 3C]
  const float *v;      // [N, 3C] ([3, C] per atom)
  const float *rbf;    // [E, R]
  const float *unit;   // [E, 3]
  const float *w_fT;   // [R, 3C]
  const float *b_f;    // [3C]
  const int64_t *src;  // [E]
  const float *weight; // [E] or null
  float *ds;           // [N, C]
  float *dv;           // [N, 3C]
};

// One receiver: x = phi_j * (W_f rbf_ij + b_f) (* w_ij); ds_i += x_s;
// dv_i += v_j x_vv + unit_ij x_vs. C_, R_: compile-time widths (0: from `a`).
template <int64_t C_, int64_t R_>
__attribute__((always_inline)) inline void
painn_receiver(const PainnArgs &a, const ReceiverRows &rows, int64_t i, float *__restrict x) {
  const int64_t C = C_ ? C_ : a.channels, R = R_ ? R_ : a.n_rbf;
  float *__restrict ds = a.ds + i * C;
  float *__restrict dv = a.dv + i * 3 * C;
  std::fill(ds, ds + C, 0.0f);
  std::fill(dv, dv + 3 * C, 0.0f);
  for (int64_t t = rows.start[i]; t < rows.start[i + 1]; ++t) {
    const int64_t k = rows.edge(t);
    const int64_t j = a.src[k];
    const float *__restrict rk = a.rbf + k * R;
    const float *__restrict w_fT = a.w_fT;
    for (int64_t o = 0; o < 3 * C; ++o)
      x[o] = a.b_f[o];
    for (int64_t r = 0; r < R; ++r) {
      const float y = rk[r];
      for (int64_t o = 0; o < 3 * C; ++o)
        x[o] += y * w_fT[r * 3 * C + o];
    }
    const float *__restrict phi = a.phi + j * 3 * C;
    for (int64_t o = 0; o < 3 * C; ++o)
      x[o] = phi[o] * x[o];
    if (a.weight != nullptr) {
      const float w = a.weight[k];
      for (int64_t o = 0; o < 3 * C; ++o)
        x[o] *= w;
    }
    for (int64_t c = 0; c < C; ++c)
      ds[c] += x[c];
    const float *__restrict vj = a.v + j * 3 * C;
    const float *__restrict u = a.unit + k * 3;
    for (int64_t d = 0; d < 3; ++d)
      for (int64_t c = 0; c < C; ++c)
        dv[d * C + c] += vj[d * C + c] * x[C + c] + u[d] * x[2 * C + c];
  }
}

SYMGNN_KERNEL void painn_range(const PainnArgs &a, const ReceiverRows &rows, int64_t begin,
                               int64_t end) {
  float x[3 * 512];
  if (a.channels == 32 && a.n_rbf == 16) {
    for (int64_t i = begin; i < end; ++i)
      painn_receiver<32, 16>(a, rows, i, x);
  } else {
    for (int64_t i = begin; i < end; ++i)
      painn_receiver<0, 0>(a, rows, i, x);
  }
}

std::tuple<Tensor, Tensor> painn_message(const Tensor &phi, const Tensor &v, const Tensor &rbf,
                                         const Tensor &unit, const Tensor &w_filter,
                                         const Tensor &b_filter, const Tensor &edge_index,
                                         const c10::optional<Tensor> &edge_weight) {
  const char *op = "symgnn::painn_message";
  TORCH_CHECK(phi.dim() == 2 && phi.size(1) % 3 == 0, op, ": phi must be [N, 3*channels], got ",
              phi.sizes());
  TORCH_CHECK(rbf.dim() == 2, op, ": rbf must be [E, n_rbf], got ", rbf.sizes());
  const int64_t n = phi.size(0), C = phi.size(1) / 3, n_edges = rbf.size(0), R = rbf.size(1);
  TORCH_CHECK(C <= 512, op, ": channels must be <= 512, got ", C);
  const Tensor phic = checked(op, "phi", phi, {n, 3 * C});
  const Tensor vc = checked(op, "v", v.reshape({-1, 3 * C}), {n, 3 * C});
  const Tensor rbfc = checked(op, "rbf", rbf, {n_edges, R});
  const Tensor unitc = checked(op, "unit", unit, {n_edges, 3});
  const Tensor w_fT = checked(op, "w_filter", w_filter, {3 * C, R}).t().contiguous();
  const Tensor b_c = checked(op, "b_filter", b_filter, {3 * C});
  const Edges edges(op, edge_index, edge_weight, n_edges, n, "rbf");
  const ReceiverRows &rows = edges.rows;

  Tensor ds = at::empty({n, C}, phic.options());
  Tensor dv = at::empty({n, 3 * C}, phic.options());
  const PainnArgs a{C,
                    R,
                    phic.data_ptr<float>(),
                    vc.data_ptr<float>(),
                    rbfc.data_ptr<float>(),
                    unitc.data_ptr<float>(),
                    w_fT.data_ptr<float>(),
                    b_c.data_ptr<float>(),
                    edges.src,
                    edges.weight,
                    ds.data_ptr<float>(),
                    dv.data_ptr<float>()};
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) { painn_range(a, rows, begin, end); });
  return {ds, dv};
}

} // namespace

TORCH_LIBRARY(symgnn, m) {
  m.def("egat_edges(Tensor p, Tensor e, Tensor edge_index, Tensor w_edge, Tensor attn, "
        "Tensor w_out, Tensor b_out, Tensor ln_weight, Tensor ln_bias, float ln_eps, "
        "float negative_slope, Tensor? edge_weight, bool update_edges) -> (Tensor, Tensor)");
  m.def("painn_message(Tensor phi, Tensor v, Tensor rbf, Tensor unit, Tensor w_filter, "
        "Tensor b_filter, Tensor edge_index, Tensor? edge_weight) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(symgnn, CPU, m) {
  m.impl("egat_edges", &egat_edges);
  m.impl("painn_message", &painn_message);
}
