// bnn_tb.h - testbench helpers (C-simulation only, never synthesized): move host integers into and out
// of packed stream beats, and read/write the int64 binary files that the Python side exchanges.
#ifndef BNN_TB_H
#define BNN_TB_H

#include <cstdio>
#include <vector>

#include "bnn_util.h"

namespace bnn {

// Push n elements (n % E == 0) as n/E beats of E elements, EB bits each (two's complement low bits).
template <unsigned E, unsigned EB>
void push_elems(hls::stream<ap_uint<E * EB>>& s, const int64_t* x, unsigned long n) {
  for (unsigned long i = 0; i < n; i += E) {
    ap_uint<E * EB> beat = 0;
    for (unsigned e = 0; e < E; e++) set_slot<EB>(beat, e, ap_uint<EB>((uint64_t)x[i + e]));
    s.write(beat);
  }
}

// Pop n/E beats and unpack their n elements (sign-extended when SIGNED).
template <unsigned E, unsigned EB, bool SIGNED>
void pop_elems(hls::stream<ap_uint<E * EB>>& s, int64_t* y, unsigned long n) {
  for (unsigned long i = 0; i < n; i += E) {
    const ap_uint<E * EB> beat = s.read();
    for (unsigned e = 0; e < E; e++) y[i + e] = elem_int<EB, SIGNED>(get_slot<EB>(beat, e).to_uint64());
  }
}

// A whole file of little-endian int64 values (an empty vector if it cannot be read).
inline std::vector<int64_t> read_int64_file(const char* path) {
  std::vector<int64_t> v;
  FILE* f = std::fopen(path, "rb");
  if (!f) return v;
  std::fseek(f, 0, SEEK_END);
  const long bytes = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  v.resize(bytes > 0 ? (size_t)bytes / sizeof(int64_t) : 0);
  if (!v.empty() && std::fread(v.data(), sizeof(int64_t), v.size(), f) != v.size()) v.clear();
  std::fclose(f);
  return v;
}

inline bool write_int64_file(const char* path, const std::vector<int64_t>& v) {
  FILE* f = std::fopen(path, "wb");
  if (!f) return false;
  const bool ok = std::fwrite(v.data(), sizeof(int64_t), v.size(), f) == v.size();
  return std::fclose(f) == 0 && ok;
}

}  // namespace bnn

#endif  // BNN_TB_H
