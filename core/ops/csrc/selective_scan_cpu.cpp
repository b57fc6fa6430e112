// Mamba's selective scan (S6) on the CPU, compiled on first use (polyformer.core.ops.selective_scan_cpu).
//
// The recurrence, per batch row b, channel d and state n:
//     h_t = exp(delta_t[d] * A[d, n]) * h_{t-1} + delta_t[d] * u_t[d] * B_t[g(d), n]
//     y_t[d] = sum_n C_t[g(d), n] * h_t[d, n]
// Work items are (batch row, block of channels); each keeps its block's states in a small local buffer and
// walks the sequence once, so every element of u, delta, B, C and y is read or written once per pass and
// the states never leave the cache. The forward pass also writes the state entering every chunk of
// `chunk` steps (the checkpoints); the backward pass walks the chunks last to first, recomputes each
// chunk's states from its checkpoint, and runs the adjoint recurrence through them.
//
// Layouts (contiguous): u, delta, y, d_du, d_dA_term: [B, T, Dm]; Bm, Cm: [B, T, G, N]; A: [Dm, N];
// h0, hT: [B, Dm, N]; checkpoints: [B, nchunks, Dm, N]; dB, dC partials: [nblocks_per_row, B, T, G, N];
// dA partials: [B, Dm, N].

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

struct Dims {
  int64_t Bsz, T, Dm, G, N, Dg, blk, nblk, chunk, nchunks;
};

Dims dims_of(const torch::Tensor& u, const torch::Tensor& Bm, int64_t blk, int64_t chunk) {
  Dims d;
  d.Bsz = u.size(0);
  d.T = u.size(1);
  d.Dm = u.size(2);
  d.G = Bm.size(2);
  d.N = Bm.size(3);
  d.Dg = d.Dm / d.G;
  d.blk = blk;
  d.nblk = d.Dm / blk;
  d.chunk = chunk;
  d.nchunks = (d.T + chunk - 1) / chunk;
  return d;
}

template <typename scalar_t>
void forward_kernel(const Dims& s, const scalar_t* u, const scalar_t* delta, const scalar_t* A, const scalar_t* Bm,
                    const scalar_t* Cm, const scalar_t* h0, scalar_t* y, scalar_t* hT, scalar_t* ckpt) {
  const int64_t N = s.N, blk = s.blk;
  at::parallel_for(0, s.Bsz * s.nblk, 1, [&](int64_t begin, int64_t end) {
    std::vector<scalar_t> h(blk * N);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.nblk, d0 = (item % s.nblk) * blk, g = d0 / s.Dg;
      for (int64_t j = 0; j < blk; ++j)
        for (int64_t n = 0; n < N; ++n)
          h[j * N + n] = h0 ? h0[(b * s.Dm + d0 + j) * N + n] : scalar_t(0);
      for (int64_t t = 0; t < s.T; ++t) {
        if (t % s.chunk == 0) {
          scalar_t* c = ckpt + ((b * s.nchunks + t / s.chunk) * s.Dm + d0) * N;
          std::copy(h.begin(), h.end(), c);
        }
        const int64_t row = (b * s.T + t) * s.Dm + d0;
        const scalar_t* Bt = Bm + ((b * s.T + t) * s.G + g) * N;
        const scalar_t* Ct = Cm + ((b * s.T + t) * s.G + g) * N;
        for (int64_t j = 0; j < blk; ++j) {
          const scalar_t dt = delta[row + j], du = dt * u[row + j];
          const scalar_t* Ad = A + (d0 + j) * N;
          scalar_t* hj = h.data() + j * N;
          scalar_t acc = 0;
          for (int64_t n = 0; n < N; ++n) {
            const scalar_t hn = std::exp(dt * Ad[n]) * hj[n] + du * Bt[n];
            hj[n] = hn;
            acc += Ct[n] * hn;
          }
          y[row + j] = acc;
        }
      }
      for (int64_t j = 0; j < blk; ++j)
        for (int64_t n = 0; n < N; ++n) hT[(b * s.Dm + d0 + j) * N + n] = h[j * N + n];
    }
  });
}

template <typename scalar_t>
void backward_kernel(const Dims& s, const scalar_t* u, const scalar_t* delta, const scalar_t* A, const scalar_t* Bm,
                     const scalar_t* Cm, const scalar_t* dy, const scalar_t* dhT, const scalar_t* ckpt,
                     scalar_t* d_du, scalar_t* d_la, scalar_t* dA, scalar_t* dBp, scalar_t* dCp, scalar_t* dh0) {
  const int64_t N = s.N, blk = s.blk, L = s.chunk, BN = blk * N;
  at::parallel_for(0, s.Bsz * s.nblk, 1, [&](int64_t begin, int64_t end) {
    // g: dLoss/dh at the current step; hs[i]: the state before step t0 + i of the chunk (hs[0]: its
    // checkpoint); as[i]: the decays exp(delta A) of step t0 + i
    std::vector<scalar_t> g(BN), hs((L + 1) * BN), as(L * BN), dA_loc(BN);
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / s.nblk, kb = item % s.nblk, d0 = kb * blk, gr = d0 / s.Dg;
      for (int64_t i = 0; i < BN; ++i) g[i] = dhT ? dhT[(b * s.Dm + d0) * N + i] : scalar_t(0);
      std::fill(dA_loc.begin(), dA_loc.end(), scalar_t(0));
      scalar_t* dBrow = dBp + (kb * s.Bsz + b) * s.T * s.G * N;
      scalar_t* dCrow = dCp + (kb * s.Bsz + b) * s.T * s.G * N;
      for (int64_t c = s.nchunks - 1; c >= 0; --c) {
        const int64_t t0 = c * L, t1 = std::min(s.T, t0 + L);
        const scalar_t* ck = ckpt + ((b * s.nchunks + c) * s.Dm + d0) * N;
        std::copy(ck, ck + BN, hs.begin());
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t row = (b * s.T + t) * s.Dm + d0;
          const scalar_t* __restrict__ Bt = Bm + ((b * s.T + t) * s.G + gr) * N;
          const scalar_t* __restrict__ prev = hs.data() + (t - t0) * BN;
          scalar_t* __restrict__ cur = hs.data() + (t - t0 + 1) * BN;
          scalar_t* __restrict__ at = as.data() + (t - t0) * BN;
          for (int64_t j = 0; j < blk; ++j) {
            const scalar_t dt = delta[row + j], du = dt * u[row + j];
            const scalar_t* __restrict__ Ad = A + (d0 + j) * N;
            for (int64_t n = 0; n < N; ++n) {
              const scalar_t a = std::exp(dt * Ad[n]);
              at[j * N + n] = a;
              cur[j * N + n] = a * prev[j * N + n] + du * Bt[n];
            }
          }
        }
        for (int64_t t = t1 - 1; t >= t0; --t) {
          const int64_t row = (b * s.T + t) * s.Dm + d0;
          const int64_t bt = (t * s.G + gr) * N;
          const scalar_t* __restrict__ Bt = Bm + b * s.T * s.G * N + bt;
          const scalar_t* __restrict__ Ct = Cm + b * s.T * s.G * N + bt;
          const scalar_t* __restrict__ prev = hs.data() + (t - t0) * BN;
          const scalar_t* __restrict__ cur = hs.data() + (t - t0 + 1) * BN;
          const scalar_t* __restrict__ at = as.data() + (t - t0) * BN;
          scalar_t* __restrict__ dBt = dBrow + bt;
          scalar_t* __restrict__ dCt = dCrow + bt;
          for (int64_t j = 0; j < blk; ++j) {
            const scalar_t dt = delta[row + j], du = dt * u[row + j], dyj = dy[row + j];
            const scalar_t* __restrict__ Ad = A + (d0 + j) * N;
            const scalar_t* __restrict__ aj = at + j * N;
            const scalar_t* __restrict__ pj = prev + j * N;
            const scalar_t* __restrict__ hj = cur + j * N;
            scalar_t* __restrict__ gj = g.data() + j * N;
            scalar_t* __restrict__ dAj = dA_loc.data() + j * N;
            scalar_t acc_du = 0, acc_la = 0;
            for (int64_t n = 0; n < N; ++n) {
              const scalar_t gn = gj[n] + dyj * Ct[n];  // dLoss/dh_t
              dCt[n] += dyj * hj[n];
              dBt[n] += gn * du;
              acc_du += gn * Bt[n];
              const scalar_t sa = gn * aj[n] * pj[n];  // dLoss / d(delta_t A[d, n])
              dAj[n] += sa * dt;
              acc_la += sa * Ad[n];
              gj[n] = gn * aj[n];  // dLoss/dh_{t-1} through h_t
            }
            d_du[row + j] = acc_du;
            d_la[row + j] = acc_la;
          }
        }
      }
      for (int64_t i = 0; i < BN; ++i) {
        dA[(b * s.Dm + d0) * N + i] = dA_loc[i];
        if (dh0) dh0[(b * s.Dm + d0) * N + i] = g[i];
      }
    }
  });
}

void check_inputs(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A, const torch::Tensor& Bm,
                  const torch::Tensor& Cm, int64_t blk) {
  for (const auto* t : {&u, &delta, &A, &Bm, &Cm}) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous(), "selective_scan_cpu: inputs must be contiguous CPU tensors");
    TORCH_CHECK(t->scalar_type() == u.scalar_type(), "selective_scan_cpu: all inputs must share u's dtype");
  }
  TORCH_CHECK(u.dim() == 3 && Bm.dim() == 4 && Cm.sizes() == Bm.sizes() && delta.sizes() == u.sizes(),
              "selective_scan_cpu: shapes u/delta [B, T, Dm], B/C [B, T, G, N]");
  TORCH_CHECK(u.size(2) % Bm.size(2) == 0 && (u.size(2) / Bm.size(2)) % blk == 0,
              "selective_scan_cpu: the channel block must divide the channels per group");
}

}  // namespace

// Returns (y, final_state, checkpoints).
std::vector<torch::Tensor> forward(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor Bm,
                                   torch::Tensor Cm, c10::optional<torch::Tensor> h0, int64_t blk, int64_t chunk) {
  check_inputs(u, delta, A, Bm, Cm, blk);
  const Dims s = dims_of(u, Bm, blk, chunk);
  auto y = torch::empty_like(u);
  auto hT = torch::empty({s.Bsz, s.Dm, s.N}, u.options());
  auto ckpt = torch::empty({s.Bsz, s.nchunks, s.Dm, s.N}, u.options());
  torch::Tensor h0c;
  if (h0.has_value()) h0c = h0->contiguous();
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_forward", [&] {
    forward_kernel<scalar_t>(s, u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
                             Bm.data_ptr<scalar_t>(), Cm.data_ptr<scalar_t>(),
                             h0c.defined() ? h0c.data_ptr<scalar_t>() : nullptr, y.data_ptr<scalar_t>(),
                             hT.data_ptr<scalar_t>(), ckpt.data_ptr<scalar_t>());
  });
  return {y, hT, ckpt};
}

// Returns (dLoss/d(delta u), sum_n dLoss/d(delta A) A, dA, dB, dC, dh0 or an empty tensor).
std::vector<torch::Tensor> backward(torch::Tensor u, torch::Tensor delta, torch::Tensor A, torch::Tensor Bm,
                                    torch::Tensor Cm, torch::Tensor dy, c10::optional<torch::Tensor> dhT,
                                    torch::Tensor ckpt, bool want_dh0, int64_t blk, int64_t chunk) {
  check_inputs(u, delta, A, Bm, Cm, blk);
  const Dims s = dims_of(u, Bm, blk, chunk);
  dy = dy.contiguous();
  torch::Tensor dhTc;
  if (dhT.has_value()) dhTc = dhT->contiguous();
  auto d_du = torch::empty_like(u), d_la = torch::empty_like(u);
  auto dA = torch::empty({s.Bsz, s.Dm, s.N}, u.options());  // per batch row, summed below
  auto dBp = torch::zeros({s.nblk, s.Bsz, s.T, s.G, s.N}, u.options());
  auto dCp = torch::zeros({s.nblk, s.Bsz, s.T, s.G, s.N}, u.options());
  auto dh0 = want_dh0 ? torch::empty({s.Bsz, s.Dm, s.N}, u.options()) : torch::Tensor();
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_cpu_backward", [&] {
    backward_kernel<scalar_t>(s, u.data_ptr<scalar_t>(), delta.data_ptr<scalar_t>(), A.data_ptr<scalar_t>(),
                              Bm.data_ptr<scalar_t>(), Cm.data_ptr<scalar_t>(), dy.data_ptr<scalar_t>(),
                              dhTc.defined() ? dhTc.data_ptr<scalar_t>() : nullptr, ckpt.data_ptr<scalar_t>(),
                              d_du.data_ptr<scalar_t>(), d_la.data_ptr<scalar_t>(), dA.data_ptr<scalar_t>(),
                              dBp.data_ptr<scalar_t>(), dCp.data_ptr<scalar_t>(),
                              want_dh0 ? dh0.data_ptr<scalar_t>() : nullptr);
  });
  // The channel blocks of a group wrote partial dB / dC rows; blocks of other groups wrote zeros there.
  return {d_du, d_la, dA.sum(0), dBp.sum(0), dCp.sum(0), dh0};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "selective scan forward (CPU)");
  m.def("backward", &backward, "selective scan backward (CPU)");
}
