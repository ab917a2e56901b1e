// Conv2D forward, backward-data and backward-weights on oneDNN, in tfjs's layouts:
// activations NHWC, filters [kh, kw, inC, outC] (oneDNN "hwio"). oneDNN is free to pick
// its own (blocked) layouts ("any"); the user buffers are reordered in and out when it does,
// because its blocked AVX2 kernels are several times faster than its plain-NHWC ones.
// Primitives and reorders are cached per shape, in pooled contexts (see Lease): threads
// run convolutions at the same time, each in a context of its own.
// Convolutions with at most 4 output channels skip oneDNN: conv_narrow.cpp runs them.
#include "common.hpp"

#include <omp.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

// Parameter block shared with the JS side (pipeline/backends/native/ffi.ts), int32 each.
struct ConvParams {
  int n, h, w, c;      // input NHWC
  int kh, kw, oc;      // filter [kh, kw, c, oc]
  int oh, ow;          // output spatial
  int sh, sw;          // strides
  int dh, dw;          // dilations (tfjs convention: 1 = none)
  int pt, pl, pb, pr;  // explicit padding
};
constexpr int kParams = sizeof(ConvParams) / sizeof(int);

enum Slot { IN0 = 0, IN1 = 1, OUT = 2, SCRATCHPAD = 3, SLOTS = 4 };

// Every primitive here gets its scratchpad from us (scratchpad_mode::user), never from
// oneDNN's library-managed one. That one is "global per thread": a primitive sizes the
// scratchpad of the thread that creates it, but at execution it uses the scratchpad of the
// thread that runs it. The cache below is process-wide and Deno runs isolates (test files,
// workers) on several threads, so a primitive made on one thread and run on another wrote
// past a smaller buffer, or through a null one: the suite's heap corruption ("corrupted
// double-linked list", SIGSEGV) on AVX2 machines, where oneDNN picks a gemm-based
// convolution with a large im2col scratchpad for 3-channel layers.
dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// The offset of index i along dim d in a blocked layout, without offset0. Blocked offsets
// are a sum over dims of such terms (outer block index · stride + position in the inner
// blocks), so two layouts put every element at the same place iff these agree for every
// d and i.
int64_t dim_offset(const dnnl_memory_desc_t &md, int d, int64_t i) {
  const auto &b = md.format_desc.blocking;
  int64_t total = 1;  // product of d's inner blocks
  for (int k = 0; k < b.inner_nblks; ++k)
    if (b.inner_idxs[k] == d) total *= b.inner_blks[k];
  int64_t off = (i / total) * b.strides[d];
  int64_t inner_stride = 1, div = 1;
  for (int k = b.inner_nblks - 1; k >= 0; --k) {
    if (b.inner_idxs[k] == d) {
      off += ((i / div) % b.inner_blks[k]) * inner_stride;
      div *= b.inner_blks[k];
    }
    inner_stride *= b.inner_blks[k];
  }
  return off;
}

// True when `a` and `b` are the same bytes in the same places: e.g. NHWC and oneDNN's
// aBcd16b when there are exactly 16 channels (the small model's 16-channel layers), where
// a reorder would only copy the tensor. Unpadded blocked layouts only.
bool same_physical(const memory::desc &a, const memory::desc &b) {
  const dnnl_memory_desc_t &x = a.data, &y = b.data;
  if (x.format_kind != dnnl_blocked || y.format_kind != dnnl_blocked) return false;
  if (x.ndims != y.ndims || x.data_type != y.data_type || x.offset0 != y.offset0) return false;
  if (x.extra.flags != 0 || y.extra.flags != 0) return false;
  for (int d = 0; d < x.ndims; ++d) {
    if (x.dims[d] != y.dims[d] || x.padded_dims[d] != x.dims[d] || y.padded_dims[d] != y.dims[d]) return false;
    if (x.padded_offsets[d] != 0 || y.padded_offsets[d] != 0) return false;
  }
  for (int d = 0; d < x.ndims; ++d)
    for (int64_t i = 0; i < x.dims[d]; ++i)
      if (dim_offset(x, d, i) != dim_offset(y, d, i)) return false;
  return true;
}

// One operand of a cached primitive: the user's plain layout, the layout the primitive
// wants, and (when they differ) the reorder between them. When the two differ only in name
// (same_physical), the user's buffer is handed to the primitive under its own desc.
struct Operand {
  int arg;
  memory::desc user;
  memory::desc want;
  bool reorder = false;
  dnnl::reorder to_internal;  // user -> want (inputs)
  dnnl::reorder to_user;      // want -> user (output)
  memory::desc scratchpad;    // of the reorder (user mode, see user_scratchpad)

  Operand(int a, const memory::desc &u, const memory::desc &w, bool is_output) : arg(a), user(u), want(w) {
    reorder = !(u == w) && !same_physical(u, w);
    if (!reorder) {
      user = want;  // the user's buffer, described as the primitive wants it
      return;
    }
    auto &eng = petal::engine();
    auto pd = is_output ? reorder::primitive_desc(eng, want, eng, user, user_scratchpad())
                        : reorder::primitive_desc(eng, user, eng, want, user_scratchpad());
    (is_output ? to_user : to_internal) = dnnl::reorder(pd);
    scratchpad = pd.scratchpad_desc();
  }
};

struct Op {
  primitive prim;
  memory::desc scratchpad;  // of the convolution (user mode)
  std::vector<Operand> ins;
  std::vector<Operand> outs;
};

enum Kind { FWD = 0, BWD_DATA = 1, BWD_WEIGHTS = 2 };

memory::dims src_dims(const ConvParams &p) { return {p.n, p.c, p.h, p.w}; }
memory::dims dst_dims(const ConvParams &p) { return {p.n, p.oc, p.oh, p.ow}; }
memory::dims wei_dims(const ConvParams &p) { return {p.oc, p.c, p.kh, p.kw}; }

bool plain_layouts() {
  static const bool on = [] {
    const char *v = std::getenv("PETAL_DNNL_LAYOUT");
    return v != nullptr && std::strcmp(v, "plain") == 0;
  }();
  return on;
}

memory::desc want_md(const memory::dims &d, tag user_tag) {
  return memory::desc(d, dt::f32, plain_layouts() ? user_tag : tag::any);
}

convolution_forward::primitive_desc forward_pd(const ConvParams &p) {
  memory::dims strides = {p.sh, p.sw}, dil = {p.dh - 1, p.dw - 1};
  memory::dims pad_l = {p.pt, p.pl}, pad_r = {p.pb, p.pr};
  auto d = convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct,
                                     want_md(src_dims(p), tag::nhwc), want_md(wei_dims(p), tag::hwio),
                                     want_md(dst_dims(p), tag::nhwc), strides, dil, pad_l, pad_r);
  return convolution_forward::primitive_desc(d, user_scratchpad(), petal::engine());
}

std::unique_ptr<Op> build(Kind kind, const ConvParams &p) {
  memory::desc src(src_dims(p), dt::f32, tag::nhwc);
  memory::desc dst(dst_dims(p), dt::f32, tag::nhwc);
  memory::desc wei(wei_dims(p), dt::f32, tag::hwio);
  memory::dims strides = {p.sh, p.sw}, dil = {p.dh - 1, p.dw - 1};
  memory::dims pad_l = {p.pt, p.pl}, pad_r = {p.pb, p.pr};
  auto fwd = forward_pd(p);
  auto op = std::make_unique<Op>();
  if (kind == FWD) {
    op->prim = convolution_forward(fwd);
    op->scratchpad = fwd.scratchpad_desc();
    op->ins.emplace_back(DNNL_ARG_SRC, src, fwd.src_desc(), false);
    op->ins.emplace_back(DNNL_ARG_WEIGHTS, wei, fwd.weights_desc(), false);
    op->outs.emplace_back(DNNL_ARG_DST, dst, fwd.dst_desc(), true);
  } else if (kind == BWD_DATA) {
    auto d = convolution_backward_data::desc(algorithm::convolution_direct, want_md(src_dims(p), tag::nhwc),
                                             want_md(wei_dims(p), tag::hwio), want_md(dst_dims(p), tag::nhwc),
                                             strides, dil, pad_l, pad_r);
    auto pd = convolution_backward_data::primitive_desc(d, user_scratchpad(), petal::engine(), fwd);
    op->prim = convolution_backward_data(pd);
    op->scratchpad = pd.scratchpad_desc();
    op->ins.emplace_back(DNNL_ARG_DIFF_DST, dst, pd.diff_dst_desc(), false);
    op->ins.emplace_back(DNNL_ARG_WEIGHTS, wei, pd.weights_desc(), false);
    op->outs.emplace_back(DNNL_ARG_DIFF_SRC, src, pd.diff_src_desc(), true);
  } else {
    auto d = convolution_backward_weights::desc(algorithm::convolution_direct, want_md(src_dims(p), tag::nhwc),
                                                want_md(wei_dims(p), tag::hwio), want_md(dst_dims(p), tag::nhwc),
                                                strides, dil, pad_l, pad_r);
    auto pd = convolution_backward_weights::primitive_desc(d, user_scratchpad(), petal::engine(), fwd);
    op->prim = convolution_backward_weights(pd);
    op->scratchpad = pd.scratchpad_desc();
    op->ins.emplace_back(DNNL_ARG_SRC, src, pd.src_desc(), false);
    op->ins.emplace_back(DNNL_ARG_DIFF_DST, dst, pd.diff_dst_desc(), false);
    op->outs.emplace_back(DNNL_ARG_DIFF_WEIGHTS, wei, pd.diff_weights_desc(), true);
  }
  return op;
}

// What one convolution at a time needs: the primitives built so far (per shape: a training
// loop sees the same handful every step, and building one (JIT) costs ms), a stream, and
// scratch for operands in oneDNN's own layout, one buffer per slot (input 0, input 1,
// output, the primitives' scratchpad), shared by every primitive of the context and grown
// to the largest need (per-primitive buffers would only multiply peak memory).
struct Context {
  std::unordered_map<std::string, std::unique_ptr<Op>> cache;
  dnnl::stream stream{petal::engine()};
  void *buf[SLOTS] = {nullptr, nullptr, nullptr, nullptr};
  size_t cap[SLOTS] = {0, 0, 0, 0};

  float *scratch(int slot, size_t bytes) {
    if (bytes > cap[slot]) {
      std::free(buf[slot]);
      buf[slot] = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
      cap[slot] = buf[slot] ? bytes : 0;
      if (!buf[slot]) throw std::bad_alloc();
    }
    return static_cast<float *>(buf[slot]);
  }

  // Keyed by shape, kind and the calling thread's OpenMP thread count: oneDNN sizes a
  // primitive's work split by the count it was built under and runs that many threads,
  // so a replica set to one thread (petal_set_threads) must not run one built for two.
  Op *cached(Kind kind, const ConvParams &p) {
    std::string key(reinterpret_cast<const char *>(&p), sizeof p);
    key.push_back(static_cast<char>(kind));
    key.push_back(static_cast<char>(omp_get_max_threads()));
    auto it = cache.find(key);
    if (it != cache.end()) return it->second.get();
    auto op = build(kind, p);
    Op *raw = op.get();
    cache.emplace(std::move(key), std::move(op));
    return raw;
  }
};

// Contexts are pooled: a call takes a free one (making one when every context is busy)
// and gives it back when it returns, so threads (Deno workers, `deno test --parallel`'s
// isolates) run their convolutions at the same time, each in its own context, and a
// context serves whichever thread takes it next (every primitive has a user scratchpad,
// see user_scratchpad). As many contexts as calls ever ran at once; never destroyed (see
// engine() in common.hpp: their primitives outlive oneDNN's statics).
std::mutex pool_lock;
std::vector<Context *> &idle_contexts() {
  static auto &idle = *new std::vector<Context *>();
  return idle;
}
int contexts_made = 0;

struct Lease {
  Context *ctx;
  Lease() {
    {
      std::lock_guard<std::mutex> guard(pool_lock);
      auto &idle = idle_contexts();
      if (!idle.empty()) {
        ctx = idle.back();
        idle.pop_back();
        return;
      }
    }
    ctx = new Context();
    std::lock_guard<std::mutex> guard(pool_lock);
    ++contexts_made;
  }
  ~Lease() {
    std::lock_guard<std::mutex> guard(pool_lock);
    idle_contexts().push_back(ctx);
  }
  Lease(const Lease &) = delete;
  Lease &operator=(const Lease &) = delete;
};

// Layout reorders are memory-bound: they run on petal::ew_threads() threads (default one,
// see common.hpp), the convolution itself on all of them.
struct ReorderThreads {
  int saved;
  ReorderThreads() : saved(omp_get_max_threads()) { omp_set_num_threads(petal::ew_threads()); }
  ~ReorderThreads() { omp_set_num_threads(saved); }
};

// The scratchpad memory for a primitive's scratchpad desc (an empty desc needs none).
memory scratchpad_memory(Context &c, const memory::desc &d) {
  return memory(d, petal::engine(), c.scratch(SCRATCHPAD, d.get_size()));
}

// Wall time in layout reorders and in the convolutions themselves (summed over threads),
// and the reorder count (petal_conv_stats; `deno task bench --profile` prints them).
std::mutex stats_lock;
double reorder_seconds = 0, conv_seconds = 0;
int64_t reorder_calls = 0;
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void reorder_exec(Context &c, Operand &o, dnnl::reorder &r, memory &from, memory &to) {
  ReorderThreads scope;
  const double t0 = now();
  r.execute(c.stream, {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to},
                       {DNNL_ARG_SCRATCHPAD, scratchpad_memory(c, o.scratchpad)}});
  c.stream.wait();
  const double spent = now() - t0;
  std::lock_guard<std::mutex> guard(stats_lock);
  reorder_seconds += spent;
  ++reorder_calls;
}

int run(Kind kind, const int *params, const float *in0, const float *in1, float *out) {
  if (petal::narrow_conv(params)) return petal::run_narrow_conv(kind, params, in0, in1, out);
  ConvParams p;
  std::memcpy(&p, params, sizeof p);
  // Small convolutions (a small model, a batch of a few) run on one thread, decided per
  // shape so the primitive is built and run with the same count: the barrier of a second
  // thread costs more than it saves there, and much more when the other core is busy.
  const double flops = 2.0 * p.n * p.oh * p.ow * p.oc * p.kh * p.kw * p.c;
  const int saved = omp_get_max_threads();
  const bool small = flops < (1 << 26);
  if (small) omp_set_num_threads(1);
  struct Restore {
    bool on;
    int n;
    ~Restore() {
      if (on) omp_set_num_threads(n);
    }
  } restore{small, saved};
  try {
    Lease lease;
    Context &c = *lease.ctx;
    Op *op = c.cached(kind, p);
    auto &eng = petal::engine();
    std::unordered_map<int, memory> args;
    const float *in_ptrs[2] = {in0, in1};
    for (size_t i = 0; i < op->ins.size(); ++i) {
      Operand &o = op->ins[i];
      memory user(o.user, eng, const_cast<float *>(in_ptrs[i]));
      if (o.reorder) {
        memory internal(o.want, eng, c.scratch(i == 0 ? IN0 : IN1, o.want.get_size()));
        reorder_exec(c, o, o.to_internal, user, internal);
        args.emplace(o.arg, internal);
      } else {
        args.emplace(o.arg, user);
      }
    }
    Operand &o = op->outs[0];
    memory user_out(o.user, eng, out);
    memory internal_out = o.reorder ? memory(o.want, eng, c.scratch(OUT, o.want.get_size())) : user_out;
    args.emplace(o.arg, internal_out);
    args.emplace(DNNL_ARG_SCRATCHPAD, scratchpad_memory(c, op->scratchpad));
    const double t0 = now();
    op->prim.execute(c.stream, args);
    c.stream.wait();
    const double spent = now() - t0;
    {
      std::lock_guard<std::mutex> guard(stats_lock);
      conv_seconds += spent;
    }
    if (o.reorder) reorder_exec(c, o, o.to_user, internal_out, user_out);
    return petal::OK;
  } catch (const dnnl::error &e) {
    if (petal::debug()) std::fprintf(stderr, "petal conv kind %d: %s\n", kind, e.what());
    return petal::DNNL_FAILED;
  } catch (const std::bad_alloc &) {
    return petal::DNNL_FAILED;
  }
}

}  // namespace

PETAL_API int petal_conv_params() { return kParams; }

// out[0] = seconds in layout reorders, out[1] = seconds in convolution primitives, out[2] =
// reorders run, all since the library loaded.
PETAL_API void petal_conv_stats(double *out) {
  std::lock_guard<std::mutex> guard(stats_lock);
  out[0] = reorder_seconds;
  out[1] = conv_seconds;
  out[2] = static_cast<double>(reorder_calls);
}

// How many convolution contexts the process has made: the most convolutions that ever ran
// at the same time (1 for a single thread).
PETAL_API int petal_conv_contexts() {
  std::lock_guard<std::mutex> guard(pool_lock);
  return contexts_made;
}

// y[n, oh, ow, oc] = conv(x[n, h, w, c], f[kh, kw, c, oc])
PETAL_API int petal_conv2d(const int *params, const float *x, const float *f, float *y) {
  return run(FWD, params, x, f, y);
}

// dx[n, h, w, c] from dy[n, oh, ow, oc] and f: tfjs's Conv2DBackpropInput (= conv2dTranspose)
PETAL_API int petal_conv2d_backprop_input(const int *params, const float *dy, const float *f, float *dx) {
  return run(BWD_DATA, params, dy, f, dx);
}

// df[kh, kw, c, oc] from x and dy: tfjs's Conv2DBackpropFilter
PETAL_API int petal_conv2d_backprop_filter(const int *params, const float *x, const float *dy, float *df) {
  return run(BWD_WEIGHTS, params, x, dy, df);
}
