// Test driver for the HLS templates (tests/test_hls_templates.py). The test generates configs.inc:
// configuration structs plus `int dispatch(kind, index, reps, in, out)` calling the runners below.
// usage: template_driver KIND INDEX REPS IN.bin OUT.bin   (int64 files; layout per runner below)
// Exit 0 ok, 2 bad input size, 3 beats left in a stream (a count mismatch), 4 unknown config.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bnn_hls.h"
#include "bnn_tb.h"

typedef std::vector<int64_t> vec;

// IN: reps frames of H*W*CH elements (NHWC). OUT: reps * OH*OW*KH*KW*CH elements (patch order kh, kw, c).
template <class C>
int run_swg(unsigned reps, const vec& in, vec& out) {
  const unsigned long n_in = (unsigned long)reps * C::H * C::W * C::CH;
  const unsigned long n_out = (unsigned long)reps * C::OH * C::OW * C::KH * C::KW * C::CH;
  if (in.size() != n_in) return 2;
  hls::stream<ap_uint<C::SIMD * C::EB>> a("a"), b("b");
  bnn::push_elems<C::SIMD, C::EB>(a, in.data(), n_in);
  bnn::window<C>(a, b, reps);
  if (!a.empty() || b.size() * C::SIMD != n_out) return 3;
  out.resize(n_out);
  bnn::pop_elems<C::SIMD, C::EB, C::SIGNED>(b, out.data(), n_out);
  return 0;
}

// IN: PE*TILES*WPT weight words (as int64), PE*NF thresholds, then reps*PIXELS*MW inputs. OUT: reps*PIXELS*MH.
template <class C>
int run_mvau(unsigned reps, const vec& in, vec& out) {
  static bnn::weight_word<C> w[C::PE][C::TILES][C::WPT];
  static bnn::threshold_word<C> t[C::PE][C::NF];
  const unsigned long nw = (unsigned long)C::PE * C::TILES * C::WPT, nt = (unsigned long)C::PE * C::NF;
  const unsigned long n_in = (unsigned long)reps * C::PIXELS * C::MW, n_out = (unsigned long)reps * C::PIXELS * C::MH;
  if (in.size() != nw + nt + n_in) return 2;
  for (unsigned long i = 0; i < nw; i++) (&w[0][0][0])[i] = (bnn::weight_word<C>)(uint64_t)in[i];
  for (unsigned long i = 0; i < nt; i++) (&t[0][0])[i] = (bnn::threshold_word<C>)in[nw + i];
  hls::stream<ap_uint<C::SIMD * C::IB>> a("a");
  hls::stream<ap_uint<C::PE * C::OB>> b("b");
  bnn::push_elems<C::SIMD, C::IB>(a, in.data() + nw + nt, n_in);
  bnn::mvau<C>(a, b, w, t, reps);
  if (!a.empty() || b.size() * C::PE != n_out) return 3;
  out.resize(n_out);
  bnn::pop_elems<C::PE, C::OB, C::OSIGNED>(b, out.data(), n_out);
  return 0;
}

// IN: reps frames of H*W*CH. OUT: reps * OH*OW*CH.
template <class C>
int run_maxpool(unsigned reps, const vec& in, vec& out) {
  const unsigned long n_in = (unsigned long)reps * C::H * C::W * C::CH;
  const unsigned long n_out = (unsigned long)reps * C::OH * C::OW * C::CH;
  if (in.size() != n_in) return 2;
  hls::stream<ap_uint<C::PE * C::EB>> a("a"), b("b");
  bnn::push_elems<C::PE, C::EB>(a, in.data(), n_in);
  bnn::maxpool<C>(a, b, reps);
  if (!a.empty() || b.size() * C::PE != n_out) return 3;
  out.resize(n_out);
  bnn::pop_elems<C::PE, C::EB, C::SIGNED>(b, out.data(), n_out);
  return 0;
}

// IN: reps*N elements. OUT: the same elements after regrouping (the beats must carry them unchanged).
template <class C>
int run_dwc(unsigned reps, const vec& in, vec& out) {
  const unsigned long n = (unsigned long)reps * C::N;
  if (in.size() != n) return 2;
  hls::stream<ap_uint<C::IN_PER_BEAT * C::EB>> a("a");
  hls::stream<ap_uint<C::OUT_PER_BEAT * C::EB>> b("b");
  bnn::push_elems<C::IN_PER_BEAT, C::EB>(a, in.data(), n);
  bnn::width_convert<C::IN_PER_BEAT, C::OUT_PER_BEAT, C::EB, C::N>(a, b, reps);
  if (!a.empty() || b.size() * C::OUT_PER_BEAT != n) return 3;
  out.resize(n);
  bnn::pop_elems<C::OUT_PER_BEAT, C::EB, C::SIGNED>(b, out.data(), n);
  return 0;
}

// IN: reps*CLASSES scores. OUT: reps labels.
template <class C>
int run_label(unsigned reps, const vec& in, vec& out) {
  if (in.size() != (unsigned long)reps * C::CLASSES) return 2;
  hls::stream<ap_uint<C::PE * C::EB>> a("a");
  hls::stream<ap_uint<C::LB>> b("b");
  bnn::push_elems<C::PE, C::EB>(a, in.data(), in.size());
  bnn::label_select<C::CLASSES, C::PE, C::EB, C::SIGNED, C::LB>(a, b, reps);
  if (!a.empty() || b.size() != reps) return 3;
  out.resize(reps);
  bnn::pop_elems<1, C::LB, false>(b, out.data(), reps);
  return 0;
}

// IN: reps*N elements through a FIFO stage of WIDTH = EB bits.
template <class C>
int run_fifo(unsigned reps, const vec& in, vec& out) {
  const unsigned long n = (unsigned long)reps * C::N;
  if (in.size() != n) return 2;
  hls::stream<ap_uint<C::EB>> a("a"), b("b");
  bnn::push_elems<1, C::EB>(a, in.data(), n);
  bnn::fifo<C::EB>(a, b, n);
  if (!a.empty() || b.size() != n) return 3;
  out.resize(n);
  bnn::pop_elems<1, C::EB, C::SIGNED>(b, out.data(), n);
  return 0;
}

#include "configs.inc"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s KIND INDEX REPS IN.bin OUT.bin\n", argv[0]);
    return 2;
  }
  const vec in = bnn::read_int64_file(argv[4]);
  vec out;
  const int rc = dispatch(argv[1], std::atoi(argv[2]), (unsigned)std::atoi(argv[3]), in, out);
  if (rc == 0 && !bnn::write_int64_file(argv[5], out)) return 2;
  return rc;
}
