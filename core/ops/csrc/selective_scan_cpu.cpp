// Mamba's selective scan (S6) on the CPU, compiled on first use (polyformer.core.ops.selective_scan_cpu).
//
// The recurrence, per batch row b, channel d and state n (mamba-ssm's selective_scan_fn):
//     dt_t[d] = softplus(delta_t[d] + bias[d])            (bias and softplus optional)
//     h_t = exp(dt_t[d] * A[d, n]) * h_{t-1} + dt_t[d] * u_t[d] * B_t[g(d), n]
//     y_t[d] = (sum_n C_t[g(d), n] * h_t[d, n] + D[d] * u_t[d]) * silu(z_t[d])   (D and z optional)
//
// Work items are (batch row, block of channels of one B/C group). An item walks the sequence once with its
// block's states in a small local buffer, so u, delta, z, B, C and y are each read or written once and
// the states never leave the cache. The inner loops are SIMD over *channels* (at::vec::Vectorized, whose
// exp() is SLEEF's): every channel has its own decay per state, so lanes never need to talk to each other
// in the forward pass (no horizontal sums), and the per-(t, d) prologue / epilogue (softplus, D, silu
// gate and their gradients) is fused in, so no extra pass over [B, T, Dm] tensors is needed around it.
//
// The forward pass also writes the state entering every chunk of `chunk` steps (the checkpoints). The
// backward pass walks the chunks last to first: it recomputes the chunk's decays and states from its
// checkpoint once (one exp per element, kept in a buffer that stays in L2), then runs the adjoint
// recurrence through them. dB and dC are sums over channels: each item accumulates its block's
// lanes per step and writes one partial row per (item, step); the blocks' partials are summed after.
//
// Layouts (contiguous): u, delta, z, y and their gradients: [B, T, Dm]; Bm, Cm: [B, T, G, N]; A: [Dm, N];
// D, bias: [Dm]; h0, hT, dhT: [B, Dm, N]; checkpoints: [B, nchunks, N, Dm] (channels innermost, as in
// the item's buffers); partials: dA [B, Dm, N], dD / dbias [B, Dm], dB / dC [nbg, B, T, G, N] with nbg
// the channel blocks per group. Inside an item, vectors are stored [channel vector][state].

#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

namespace {

using at::vec::Vectorized;

struct Dims {
  int64_t Bsz, T, Dm, G, N, Dg, blk, nbg, nitems, chunk, nchunks;
};

Dims dims_of(const torch::Tensor& u, const torch::Tensor& Bm, int64_t blk, int64_t chunk) {
  Dims d;
  d.Bsz = u.size(0);
  d.T = u.size(1);
  d.Dm = u.size(2);
  d.G = Bm.size(2);
  d.N = Bm.size(3);
  d.Dg = d.Dm / d.G;
  d.blk = std::min(blk, d.Dg);
  d.nbg = (d.Dg + d.blk - 1) / d.blk;  // the last block of a group may be shorter
  d.nitems = d.Bsz * d.G * d.nbg;
  d.chunk = chunk;
  d.nchunks = chunk > 0 ? (d.T + chunk - 1) / chunk : 0;
  return d;
}

// One work item: batch row b, group g, channels [d0, d0 + nc) in nv vectors (the last one has `tail` lanes).
struct Item {
  int64_t b, g, kb, d0, nc, nv;
  Item(const Dims& s, int64_t item, int64_t W) {
    kb = item % s.nbg;
    g = (item / s.nbg) % s.G;
    b = item / (s.nbg * s.G);
    d0 = g * s.Dg + kb * s.blk;
    nc = std::min(s.blk, s.Dg - kb * s.blk);
    nv = (nc + W - 1) / W;
  }
  int64_t lanes(int64_t v, int64_t W) const { return std::min(W, nc - v * W); }
};

// Loads / stores of `cnt` lanes (the rest zero): a block's last vector may be partial. Zero lanes are
// harmless everywhere below (they carry dt * u = 0, dy = 0, A = 0, so exp(0) = 1 and the states stay 0).
template <typename scalar_t>
inline Vectorized<scalar_t> ld(const scalar_t* p, int64_t cnt) {
  using Vec = Vectorized<scalar_t>;
  return cnt == Vec::size() ? Vec::loadu(p) : Vec::loadu(p, cnt);
}
template <typename scalar_t>
inline void st(const Vectorized<scalar_t>& v, scalar_t* p, int64_t cnt) {
  cnt == Vectorized<scalar_t>::size() ? v.store(p) : v.store(p, cnt);
}

// A strided column (channels d0.. at stride `stride`) as a vector, zero beyond cnt lanes.
template <typename scalar_t>
inline Vectorized<scalar_t> gather(const scalar_t* p, int64_t stride, int64_t cnt) {
  alignas(64) scalar_t tmp[Vectorized<scalar_t>::size()] = {};
  for (int64_t i = 0; i < cnt; ++i) tmp[i] = p[i * stride];
  return Vectorized<scalar_t>::loadu(tmp);
}
template <typename scalar_t>
inline void scatter(const Vectorized<scalar_t>& v, scalar_t* p, int64_t stride, int64_t cnt) {
  alignas(64) scalar_t tmp[Vectorized<scalar_t>::size()];
  v.store(tmp);
  for (int64_t i = 0; i < cnt; ++i) p[i * stride] = tmp[i];
}

// exp of every lane. Float: inline (Cephes' expf: x = k ln2 + r with ln2 in two parts, a degree-6
// polynomial in r, times 2^k built in the exponent bits; within ~1 ulp). SLEEF's exp, which
// Vectorized::exp() calls, goes through a dispatcher per vector and forces the loop's registers to
// memory around each call; inlined, the loop runs about twice as fast. Double: SLEEF (used in tests).
template <typename scalar_t>
inline Vectorized<scalar_t> vexp(const Vectorized<scalar_t>& x) {
  return x.exp();
}
template <>
inline Vectorized<float> vexp(const Vectorized<float>& x) {
  using Vec = Vectorized<float>;
  using IVec = Vectorized<int32_t>;
  const Vec xc = at::vec::clamp(x, Vec(-88.f), Vec(88.f));
  const Vec k = (xc * Vec(1.44269504088896341f)).round();
  Vec r = at::vec::fnmadd(k, Vec(0.693359375f), xc);
  r = at::vec::fnmadd(k, Vec(-2.12194440e-4f), r);
  Vec p = at::vec::fmadd(Vec(1.9875691500e-4f), r, Vec(1.3981999507e-3f));
  p = at::vec::fmadd(p, r, Vec(8.3334519073e-3f));
  p = at::vec::fmadd(p, r, Vec(4.1665795894e-2f));
  p = at::vec::fmadd(p, r, Vec(1.6666665459e-1f));
  p = at::vec::fmadd(p, r, Vec(5.0000001201e-1f));
  p = at::vec::fmadd(p, r * r, r + Vec(1.f));
  const IVec bits = (at::vec::convert_to_int_of_same_size(k) + IVec(127)) << IVec(23);
  const Vec y = p * at::vec::cast<float>(bits);
  // below log(smallest normal float): 0 (exp's denormals are negligible here); above log(max): inf
  return Vec::blendv(Vec::blendv(y, Vec(0.f), x < Vec(-87.33654f)), Vec(INFINITY), x > Vec(88.72283f));
}

// log1p(y) for y in [0, 1]. Float: inline, as 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with
// s = y / (2 + y) <= 1/3 (the series to s^17 is exact to float precision, and relative error stays small
// as y -> 0). SLEEF's float log1p is about 10 ns per element on this build (torch.log1p too), which made
// softplus cost more than the whole scan. Double: SLEEF.
template <typename scalar_t>
inline Vectorized<scalar_t> vlog1p01(const Vectorized<scalar_t>& y) {
  return y.log1p();
}
template <>
inline Vectorized<float> vlog1p01(const Vectorized<float>& y) {
  using Vec = Vectorized<float>;
  const Vec s = y / (Vec(2.f) + y), s2 = s * s;
  Vec p = Vec(1.f / 17);
  for (const float c : {1.f / 15, 1.f / 13, 1.f / 11, 1.f / 9, 1.f / 7, 1.f / 5, 1.f / 3}) p = at::vec::fmadd(p, s2, Vec(c));
  const Vec two_s = s + s;
  return at::vec::fmadd(two_s * s2, p, two_s);
}

template <typename scalar_t>
inline scalar_t hsum(const Vectorized<scalar_t>& v) {
  return at::vec::vec_reduce_all<scalar_t>([](const auto& x, const auto& y) { return x + y; }, v);
}

template <typename scalar_t>
struct Inputs {
  const scalar_t *u, *delta, *A, *Bm, *Cm, *D, *z, *bias, *h0;
  bool softplus;
};

// dt = softplus(x) = max(x, 0) + log1p(exp(-|x|)) (= x above torch's threshold 20, as torch computes it);
// `sp` gets its derivative sigmoid(x) when asked.
template <typename scalar_t>
inline Vectorized<scalar_t> delta_of(const Inputs<scalar_t>& in, int64_t at, const Vectorized<scalar_t>& bias,
                                     int64_t cnt, Vectorized<scalar_t>* sp = nullptr) {
  using Vec = Vectorized<scalar_t>;
  Vec x = ld(in.delta + at, cnt);
  if (in.bias) x = x + bias;
  if (!in.softplus) return x;
  const Vec zero(scalar_t(0)), one(scalar_t(1)), big = x > Vec(scalar_t(20));
  const Vec e = vexp(zero - x.abs());  // exp(-|x|) in (0, 1]: no overflow
  if (sp) {
    const Vec r = one / (one + e);  // sigmoid(|x|)
    *sp = Vec::blendv(Vec::blendv(e * r, r, x >= zero), one, big);
  }
  return Vec::blendv(at::vec::maximum(x, zero) + vlog1p01(e), x, big);
}

// Run `body(item)` for every item on up to get_num_threads() threads. Items are claimed one at a time
// from a shared counter (not split evenly up front): on a machine shared with other jobs one thread is
// often descheduled for a while, and the other one then takes more of the items.
template <typename Setup>
void for_each_item(int64_t nitems, const Setup& setup) {
  std::atomic<int64_t> next{0};
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), nitems));
  at::parallel_for(0, workers, 1, [&](int64_t begin, int64_t end) {
    auto body = setup();  // per-thread buffers live in the returned closure
    for (int64_t item; (item = next.fetch_add(1)) < nitems;) body(item);
  });
}

template <typename scalar_t>
void forward_kernel(const Dims& s, const Inputs<scalar_t>& in, scalar_t* y, scalar_t* hT, scalar_t* ckpt) {
  using Vec = Vectorized<scalar_t>;
  constexpr int64_t W = Vec::size();
  const int64_t N = s.N, NV = (s.blk + W - 1) / W;
  for_each_item(s.nitems, [&] {
    return [&, At = std::vector<Vec>(NV * N), h = std::vector<Vec>(NV * N), Dv = std::vector<Vec>(NV),
            bv = std::vector<Vec>(NV)](int64_t index) mutable {
      const Item it(s, index, W);
      for (int64_t v = 0; v < it.nv; ++v) {
        const int64_t d = it.d0 + v * W, cnt = it.lanes(v, W);
        for (int64_t n = 0; n < N; ++n) {
          At[v * N + n] = gather(in.A + d * N + n, N, cnt);
          h[v * N + n] = in.h0 ? gather(in.h0 + (it.b * s.Dm + d) * N + n, N, cnt) : Vec(scalar_t(0));
        }
        Dv[v] = in.D ? ld(in.D + d, cnt) : Vec(scalar_t(0));
        bv[v] = in.bias ? ld(in.bias + d, cnt) : Vec(scalar_t(0));
      }
      for (int64_t t = 0; t < s.T; ++t) {
        if (ckpt && t % s.chunk == 0) {
          scalar_t* c = ckpt + (it.b * s.nchunks + t / s.chunk) * N * s.Dm + it.d0;
          for (int64_t v = 0; v < it.nv; ++v)
            for (int64_t n = 0; n < N; ++n) st(h[v * N + n], c + n * s.Dm + v * W, it.lanes(v, W));
        }
        const int64_t row = (it.b * s.T + t) * s.Dm + it.d0;
        const scalar_t* Bt = in.Bm + ((it.b * s.T + t) * s.G + it.g) * N;
        const scalar_t* Ct = in.Cm + ((it.b * s.T + t) * s.G + it.g) * N;
        for (int64_t v = 0; v < it.nv; ++v) {
          const int64_t cnt = it.lanes(v, W), at = row + v * W;
          const Vec dt = delta_of(in, at, bv[v], cnt), uv = ld(in.u + at, cnt), du = dt * uv;
          Vec* hv = h.data() + v * N;
          const Vec* Av = At.data() + v * N;
          Vec acc(scalar_t(0));
          for (int64_t n = 0; n < N; ++n) {
            hv[n] = at::vec::fmadd(vexp(dt * Av[n]), hv[n], du * Vec(Bt[n]));
            acc = at::vec::fmadd(Vec(Ct[n]), hv[n], acc);
          }
          if (in.D) acc = at::vec::fmadd(Dv[v], uv, acc);
          if (in.z) {
            const Vec zv = ld(in.z + at, cnt);
            acc = acc * zv / (Vec(scalar_t(1)) + vexp(zv.neg()));  // silu(z) = z sigmoid(z)
          }
          st(acc, y + at, cnt);
        }
      }
      for (int64_t v = 0; v < it.nv; ++v)
        for (int64_t n = 0; n < N; ++n)
          scatter(h[v * N + n], hT + (it.b * s.Dm + it.d0 + v * W) * N + n, N, it.lanes(v, W));
    };
  });
}

template <typename scalar_t>
struct Grads {
  scalar_t *du, *ddelta, *dz, *dA, *dD, *dbias, *dB, *dC, *dh0;
};

template <typename scalar_t>
void backward_kernel(const Dims& s, const Inputs<scalar_t>& in, const scalar_t* dy_out, const scalar_t* dhT,
                     const scalar_t* ckpt, const Grads<scalar_t>& gr) {
  using Vec = Vectorized<scalar_t>;
  constexpr int64_t W = Vec::size();
  const int64_t N = s.N, NV = (s.blk + W - 1) / W, L = s.chunk, VN = NV * N;
  const Vec zero(scalar_t(0)), one(scalar_t(1));
  for_each_item(s.nitems, [&] {
    // Per chunk of L steps, [step][channel vector][state]: hs, the states entering each step; as, the
    // decays of each step. Per [step][channel vector]: dt, dt u, u, dy (through the gate), softplus'
    // (all read in the forward walk), and du, ddelta (written by the backward walk, stored after it in
    // forward order: rows of [B, T, Dm] are far apart and the hardware prefetches forward walks best).
    // g: dLoss/dh at the current step. dA, dD, dbias: this block's sums over steps.
    return [&, At = std::vector<Vec>(VN), g = std::vector<Vec>(VN), dA = std::vector<Vec>(VN),
            hs = std::vector<Vec>(L * VN), as = std::vector<Vec>(L * VN), dts = std::vector<Vec>(L * NV),
            dus = std::vector<Vec>(L * NV), us = std::vector<Vec>(L * NV), dys = std::vector<Vec>(L * NV),
            sps = std::vector<Vec>(L * NV), gus = std::vector<Vec>(L * NV), gds = std::vector<Vec>(L * NV),
            Dv = std::vector<Vec>(NV), bv = std::vector<Vec>(NV), dDv = std::vector<Vec>(NV),
            dbv = std::vector<Vec>(NV), cur = std::vector<Vec>(VN), acc = std::vector<Vec>(N)](int64_t index) mutable {
      const Item it(s, index, W);
      for (int64_t v = 0; v < it.nv; ++v) {
        const int64_t d = it.d0 + v * W, cnt = it.lanes(v, W);
        for (int64_t n = 0; n < N; ++n) {
          At[v * N + n] = gather(in.A + d * N + n, N, cnt);
          g[v * N + n] = dhT ? gather(dhT + (it.b * s.Dm + d) * N + n, N, cnt) : zero;
          dA[v * N + n] = zero;
        }
        Dv[v] = in.D ? ld(in.D + d, cnt) : zero;
        bv[v] = in.bias ? ld(in.bias + d, cnt) : zero;
        dDv[v] = dbv[v] = zero;
      }
      const int64_t bg = it.b * s.T * s.G + it.g;                 // (b, t = 0, g) in [B, T, G]
      const int64_t part = it.kb * s.Bsz * s.T * s.G + bg;         // the same in this block's dB / dC partial
      for (int64_t c = s.nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * L, t1 = std::min(s.T, t0 + L);
        const scalar_t* ck = ckpt + (it.b * s.nchunks + c) * N * s.Dm + it.d0;
        for (int64_t v = 0; v < it.nv; ++v)
          for (int64_t n = 0; n < N; ++n) cur[v * N + n] = ld(ck + n * s.Dm + v * W, it.lanes(v, W));
        // Forward walk: the chunk's states and decays again, and every gradient that does not need the
        // adjoint: dC (= sum_d dy h_t), dz (needs y) and dD.
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t i = t - t0, row = (it.b * s.T + t) * s.Dm + it.d0;
          const scalar_t* Bt = in.Bm + (bg + t * s.G) * N;
          const scalar_t* Ct = in.Cm + (bg + t * s.G) * N;
          std::fill(acc.begin(), acc.end(), zero);
          for (int64_t v = 0; v < it.nv; ++v) {
            const int64_t cnt = it.lanes(v, W), at = row + v * W, iv = i * NV + v;
            Vec sp = one;
            const Vec dt = delta_of(in, at, bv[v], cnt, &sp), uv = ld(in.u + at, cnt), du = dt * uv;
            const Vec dyo = ld(dy_out + at, cnt);
            Vec dy = dyo, zv = zero, sg = zero;
            if (in.z) {
              zv = ld(in.z + at, cnt);
              sg = one / (one + vexp(zv.neg()));
              dy = dyo * zv * sg;  // through the gate silu(z)
            }
            dts[iv] = dt, dus[iv] = du, us[iv] = uv, dys[iv] = dy, sps[iv] = sp;
            Vec* h = cur.data() + v * N;
            Vec* hprev = hs.data() + i * VN + v * N;
            Vec* a = as.data() + i * VN + v * N;
            const Vec* Av = At.data() + v * N;
            Vec acc_y = zero;
            for (int64_t n = 0; n < N; ++n) {
              hprev[n] = h[n];
              a[n] = vexp(dt * Av[n]);
              h[n] = at::vec::fmadd(a[n], h[n], du * Vec(Bt[n]));
              const Vec cn(Ct[n]);
              acc_y = at::vec::fmadd(cn, h[n], acc_y);
              acc[n] = at::vec::fmadd(dy, h[n], acc[n]);  // dC
            }
            if (in.z) {  // d silu(z)/dz = sigmoid(z) (1 + z (1 - sigmoid(z)))
              const Vec ypre = at::vec::fmadd(Dv[v], uv, acc_y);
              st(dyo * ypre * sg * at::vec::fmadd(zv, one - sg, one), gr.dz + at, cnt);
            }
            if (in.D) dDv[v] = at::vec::fmadd(dy, uv, dDv[v]);
          }
          scalar_t* dCt = gr.dC + (part + t * s.G) * N;
          for (int64_t n = 0; n < N; ++n) dCt[n] = hsum(acc[n]);
        }
        // Backward walk: the adjoint recurrence, last step first.
        for (int64_t t = t1 - 1; t >= t0; --t) {
          const int64_t i = t - t0;
          const scalar_t* Bt = in.Bm + (bg + t * s.G) * N;
          const scalar_t* Ct = in.Cm + (bg + t * s.G) * N;
          std::fill(acc.begin(), acc.end(), zero);
          for (int64_t v = 0; v < it.nv; ++v) {
            const int64_t iv = i * NV + v;
            const Vec dt = dts[iv], du = dus[iv], dy = dys[iv];
            const Vec* hprev = hs.data() + i * VN + v * N;
            const Vec* a = as.data() + i * VN + v * N;
            const Vec* Av = At.data() + v * N;
            Vec* gv = g.data() + v * N;
            Vec* dAv = dA.data() + v * N;
            Vec acc_du = zero, acc_la = zero;
            for (int64_t n = 0; n < N; ++n) {
              const Vec gn = at::vec::fmadd(dy, Vec(Ct[n]), gv[n]);  // dLoss/dh_t
              acc[n] = at::vec::fmadd(gn, du, acc[n]);                // dB
              acc_du = at::vec::fmadd(gn, Vec(Bt[n]), acc_du);
              const Vec sa = gn * a[n] * hprev[n];  // dLoss / d(dt_t A[d, n])
              dAv[n] = at::vec::fmadd(sa, dt, dAv[n]);
              acc_la = at::vec::fmadd(sa, Av[n], acc_la);
              gv[n] = gn * a[n];  // dLoss/dh_{t-1} through h_t
            }
            gus[iv] = at::vec::fmadd(acc_du, dt, Dv[v] * dy);
            const Vec ddelta = at::vec::fmadd(acc_du, us[iv], acc_la) * sps[iv];
            gds[iv] = ddelta;
            if (in.bias) dbv[v] = dbv[v] + ddelta;
          }
          scalar_t* dBt = gr.dB + (part + t * s.G) * N;
          for (int64_t n = 0; n < N; ++n) dBt[n] = hsum(acc[n]);
        }
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t i = t - t0, row = (it.b * s.T + t) * s.Dm + it.d0;
          for (int64_t v = 0; v < it.nv; ++v) {
            st(gus[i * NV + v], gr.du + row + v * W, it.lanes(v, W));
            st(gds[i * NV + v], gr.ddelta + row + v * W, it.lanes(v, W));
          }
        }
      }
      for (int64_t v = 0; v < it.nv; ++v) {
        const int64_t d = it.d0 + v * W, cnt = it.lanes(v, W);
        for (int64_t n = 0; n < N; ++n) {
          scatter(dA[v * N + n], gr.dA + (it.b * s.Dm + d) * N + n, N, cnt);
          if (gr.dh0) scatter(g[v * N + n], gr.dh0 + (it.b * s.Dm + d) * N + n, N, cnt);
        }
        if (in.D) st(dDv[v], gr.dD + it.b * s.Dm + d, cnt);
        if (in.bias) st(dbv[v], gr.dbias + it.b * s.Dm + d, cnt);
      }
    };
  });
}

template <typename scalar_t>
const scalar_t* ptr_or_null(const c10::optional<torch::Tensor>& t) {
  return t.has_value() && t->defined() ? t->data_ptr<scalar_t>() : nullptr;
}

void check_inputs(const std::vector<c10::optional<torch::Tensor>>& ts, const torch::Tensor& u,
                  const torch::Tensor& delta, const torch::Tensor& Bm, const torch::Tensor& Cm) {
  for (const auto& t : ts) {
    if (!t.has_value() || !t->defined()) continue;
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous(), "selective_scan_cpu: inputs must be contiguous CPU tensors");
    TORCH_CHECK(t->scalar_type() == u.scalar_type(), "selective_scan_cpu: all inputs must share u's dtype");
  }
  TORCH_CHECK(u.dim() == 3 && Bm.dim() == 4 && Cm.sizes() == Bm.sizes() && delta.sizes() == u.sizes(),
              "selective_scan_cpu: shapes u/delta [B, T, Dm], B/C [B, T, G, N]");
  TORCH_CHECK(u.size(2) % Bm.size(2) == 0, "selective_scan_cpu: the groups must divide the channels");
}

}  // namespace

// Returns (y, final_state, checkpoints); chunk <= 0: no checkpoints (no backward pass will follow).
std::vector<torch::Tensor> forward(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor Bm,
                                   torch::Tensor Cm, c10::optional<torch::Tensor> D, c10::optional<torch::Tensor> z,
                                   c10::optional<torch::Tensor> bias, bool softplus, c10::optional<torch::Tensor> h0,
                                   int64_t blk, int64_t chunk) {
  check_inputs({u, delta, A, Bm, Cm, D, z, bias, h0}, u, delta, Bm, Cm);
  const Dims s = dims_of(u, Bm, blk, chunk);
  auto y = torch::empty_like(u);
  auto hT = torch::empty({s.Bsz, s.Dm, s.N}, u.options());
  auto ckpt = torch::empty({s.Bsz, s.nchunks, s.N, s.Dm}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_forward", [&] {
    const Inputs<scalar_t> in{u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
                              Bm.data_ptr<scalar_t>(), Cm.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(D),
                              ptr_or_null<scalar_t>(z), ptr_or_null<scalar_t>(bias), ptr_or_null<scalar_t>(h0),
                              softplus};
    forward_kernel<scalar_t>(s, in, y.data_ptr<scalar_t>(), hT.data_ptr<scalar_t>(),
                             s.nchunks ? ckpt.data_ptr<scalar_t>() : nullptr);
  });
  return {y, hT, ckpt};
}

// Returns (du, ddelta, dA, dB, dC, dD, dz, dbias, dh0); the optional ones are empty tensors when absent.
std::vector<torch::Tensor> backward(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor Bm,
                                    torch::Tensor Cm, c10::optional<torch::Tensor> D, c10::optional<torch::Tensor> z,
                                    c10::optional<torch::Tensor> bias, bool softplus, torch::Tensor dy,
                                    c10::optional<torch::Tensor> dhT, torch::Tensor ckpt, bool want_dh0, int64_t blk,
                                    int64_t chunk) {
  dy = dy.contiguous();
  check_inputs({u, delta, A, Bm, Cm, D, z, bias, dy, dhT, ckpt}, u, delta, Bm, Cm);
  TORCH_CHECK(chunk > 0, "selective_scan_cpu: the backward pass needs the forward's checkpoints");
  const Dims s = dims_of(u, Bm, blk, chunk);
  const bool has_D = D.has_value() && D->defined(), has_z = z.has_value() && z->defined();
  const bool has_bias = bias.has_value() && bias->defined();
  auto opts = u.options();
  auto du = torch::empty_like(u), ddelta = torch::empty_like(u);
  auto dz = has_z ? torch::empty_like(u) : torch::Tensor();
  auto dA = torch::empty({s.Bsz, s.Dm, s.N}, opts);  // per batch row, summed below
  auto dD = has_D ? torch::empty({s.Bsz, s.Dm}, opts) : torch::Tensor();
  auto dbias = has_bias ? torch::empty({s.Bsz, s.Dm}, opts) : torch::Tensor();
  // every block of a group writes its partial dB / dC for every step of that group: no zeroing needed
  auto dBp = torch::empty({s.nbg, s.Bsz, s.T, s.G, s.N}, opts);
  auto dCp = torch::empty({s.nbg, s.Bsz, s.T, s.G, s.N}, opts);
  auto dh0 = want_dh0 ? torch::empty({s.Bsz, s.Dm, s.N}, opts) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_backward", [&] {
    const Inputs<scalar_t> in{u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
                              Bm.data_ptr<scalar_t>(), Cm.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(D),
                              ptr_or_null<scalar_t>(z), ptr_or_null<scalar_t>(bias), nullptr, softplus};
    auto p = [](torch::Tensor& t) { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
    const Grads<scalar_t> gr{p(du), p(ddelta), p(dz), p(dA), p(dD), p(dbias), p(dBp), p(dCp), p(dh0)};
    backward_kernel<scalar_t>(s, in, dy.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(dhT),
                              ckpt.data_ptr<scalar_t>(), gr);
  });
  auto sum0 = [](const torch::Tensor& t) { return t.defined() ? t.sum(0) : t; };
  return {du, ddelta, dA.sum(0), sum0(dBp), sum0(dCp), sum0(dD), dz, sum0(dbias), dh0};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "selective scan forward (CPU)");
  m.def("backward", &backward, "selective scan backward (CPU)");
}
