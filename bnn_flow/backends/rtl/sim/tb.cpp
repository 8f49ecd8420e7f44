// tb.cpp - the Verilator testbench of a generated bnn_top (bnn_flow/backends/rtl/sim.py builds and runs it).
// Hand-written; the design's numbers come from the generated bnn_sim_params.h (stream formats, stage table).
//
// usage: Vsim IN.bin OUT.bin STATS.json FRAMES.bin [options]
//   IN.bin      int64 graph input integers, BNN_IN_ELEMS per frame (NHWC), packed BNN_IN_PER_BEAT per beat
//   OUT.bin     int64 outputs written, BNN_OUT_ELEMS per frame (the last MVAU's accumulators, class order)
//   STATS.json  cycle measurements (below); FRAMES.bin: int64 per frame: first input beat taken, last input
//               beat taken, first output beat, last output beat (cycles after reset)
// options:
//   --seed S --p-valid P --p-ready P  random stalls: in a cycle the input offers a beat with probability P/256
//                                     (once offered, it stays until taken: AXI-Stream) and the output is ready
//                                     with probability P/256 (256: no stalls, the default)
//   --pace C            offer input beats evenly at C cycles per frame (FIFO sizing), else as fast as taken
//   --window A B        the steady-state window: from frame A's first output beat to frame B's (FIFO occupancy;
//                       the per-stage counts stop earlier if the input runs out first: busy_cycles)
//   --iso F             after the run, reset and measure every stage alone (probe_iso) for F frames
//   --max-cycles N      give up after N cycles; --idle N: give up after N cycles without a beat at a top port
//   --progress N        print "frames K" on stdout every N output frames
//   --caps C1,C2,...    a capacity per FIFO (probe_caps: it then acts as a bnn_fifo of that depth), else none
// Exit: 0 ok, 2 bad arguments or files, 3 timeout or no progress (a deadlock), 4 a $finish/$stop in the design.
//
// Per cycle the testbench sets the inputs with clk low, evaluates, samples every handshake (top ports and the
// probe port: in_valid, in_ready, out_valid, out_ready of each stage), then raises clk. A beat moves when
// valid && ready at that sample. FIFO k (between stages k-1 and k) holds stage k-1's output beats not yet
// taken by stage k: its occupancy is counted from the two handshakes, exactly bnn_fifo's count.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "Vbnn_top.h"
#include "bnn_sim_params.h"
#include "verilated.h"

namespace {

constexpr int kProbeBits = 4 * BNN_STAGES;
constexpr int kInWords = (BNN_IN_W + 31) / 32 + 1;  // +1: a QData port reads two words
constexpr int kOutWords = (BNN_OUT_W + 31) / 32 + 1;
constexpr int kProbeWords = (kProbeBits + 31) / 32 + 1;

// Verilator port types by width: CData/SData/IData (<= 32 bits), QData (<= 64), VlWide<N> (wider). Inline:
// which overloads a design uses depends on its port widths.
inline void put(CData& p, const uint32_t* w) { p = static_cast<CData>(w[0]); }
inline void put(SData& p, const uint32_t* w) { p = static_cast<SData>(w[0]); }
inline void put(IData& p, const uint32_t* w) { p = w[0]; }
inline void put(QData& p, const uint32_t* w) { p = static_cast<QData>(w[0]) | (static_cast<QData>(w[1]) << 32); }
template <std::size_t N>
inline void put(VlWide<N>& p, const uint32_t* w) {
  for (std::size_t i = 0; i < N; i++) p[i] = w[i];
}
inline void get(CData p, uint32_t* w) { w[0] = p; }
inline void get(SData p, uint32_t* w) { w[0] = p; }
inline void get(IData p, uint32_t* w) { w[0] = p; }
inline void get(QData p, uint32_t* w) {
  w[0] = static_cast<uint32_t>(p);
  w[1] = static_cast<uint32_t>(p >> 32);
}
template <std::size_t N>
inline void get(const VlWide<N>& p, uint32_t* w) {
  for (std::size_t i = 0; i < N; i++) w[i] = p[i];
}

inline bool bit(const uint32_t* w, int i) { return (w[i >> 5] >> (i & 31)) & 1u; }

// Element e (eb bits) of a beat, sign-extended if signed.
int64_t element(const uint32_t* w, int e, int eb, bool is_signed) {
  uint64_t v = 0;
  for (int b = 0; b < eb; b++) v |= static_cast<uint64_t>(bit(w, e * eb + b)) << b;
  if (is_signed && eb < 64 && ((v >> (eb - 1)) & 1)) v -= (uint64_t{1} << eb);
  return static_cast<int64_t>(v);
}

void pack_beat(const int64_t* elems, uint32_t* w) {
  std::memset(w, 0, sizeof(uint32_t) * kInWords);
  for (int e = 0; e < BNN_IN_PER_BEAT; e++) {
    const uint64_t v = static_cast<uint64_t>(elems[e]);
    for (int b = 0; b < BNN_IN_EB; b++) {
      const int i = e * BNN_IN_EB + b;
      if ((v >> b) & 1) w[i >> 5] |= 1u << (i & 31);
    }
  }
}

struct Xorshift {  // the stall pattern (deterministic for a seed)
  uint32_t s;
  uint32_t next() {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    return s;
  }
};

struct Options {
  uint32_t seed = 1;
  unsigned p_valid = 256, p_ready = 256;
  double pace = 0;
  long win_a = -1, win_b = -1;
  long iso = 0;
  uint64_t max_cycles = 1ull << 40, idle = 1ull << 40;
  long progress = 0;
  std::vector<uint32_t> caps = std::vector<uint32_t>(BNN_STAGES - 1, 0xffffffffu);  // FIFO k at caps[k-1]
};

// "a,b,c" -> one capacity per FIFO; false when the count is wrong.
bool parse_caps(const char* text, std::vector<uint32_t>& caps) {
  std::size_t k = 0;
  for (const char* p = text; *p; k++) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(p, &end, 10);
    if (end == p || k >= caps.size()) return false;
    caps[k] = static_cast<uint32_t>(v);
    p = *end == ',' ? end + 1 : end;
  }
  return k == caps.size();
}

struct StageCounts {  // per stage, in the steady-state window
  uint64_t in_fire = 0, in_wait = 0, in_starved = 0, out_fire = 0, out_blocked = 0;
};

std::vector<int64_t> read_int64(const char* path) {
  std::vector<int64_t> v;
  FILE* f = std::fopen(path, "rb");
  if (!f) return v;
  int64_t x;
  while (std::fread(&x, sizeof x, 1, f) == 1) v.push_back(x);
  std::fclose(f);
  return v;
}

bool write_int64(const char* path, const std::vector<int64_t>& v) {
  FILE* f = std::fopen(path, "wb");
  if (!f) return false;
  const bool ok = std::fwrite(v.data(), sizeof(int64_t), v.size(), f) == v.size();
  return std::fclose(f) == 0 && ok;
}

class Bench {
 public:
  explicit Bench(VerilatedContext* ctx) : top_(new Vbnn_top{ctx}) {}
  ~Bench() {
    top_->final();
    delete top_;
  }

  void reset() {
    top_->rst = 1;
    top_->in_valid = 0;
    top_->out_ready = 0;
    for (int i = 0; i < 4; i++) tick();
    top_->rst = 0;
  }
  // Evaluate with clk low (inputs set), sample; then the rising edge.
  void sample() {
    top_->clk = 0;
    top_->eval();
    get(top_->probe, probe_);
  }
  void edge() {
    top_->clk = 1;
    top_->eval();
  }
  void tick() {
    sample();
    edge();
  }
  Vbnn_top* top_;
  uint32_t probe_[kProbeWords] = {};
};

void json_array(FILE* f, const char* key, const std::vector<uint64_t>& v, bool last = false) {
  std::fprintf(f, "  \"%s\": [", key);
  for (std::size_t i = 0; i < v.size(); i++) std::fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)v[i]);
  std::fprintf(f, "]%s\n", last ? "" : ",");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s IN.bin OUT.bin STATS.json FRAMES.bin [options]\n", argv[0]);
    return 2;
  }
  Options o;
  for (int i = 5; i < argc; i++) {  // every option takes one number (--window two)
    const std::string a = argv[i];
    const int values = a == "--window" ? 2 : 1;
    if (i + values >= argc) {
      std::fprintf(stderr, "option %s needs %d value(s)\n", a.c_str(), values);
      return 2;
    }
    if (a == "--caps") {
      if (!parse_caps(argv[++i], o.caps)) {
        std::fprintf(stderr, "--caps needs %d comma-separated capacities\n", BNN_STAGES - 1);
        return 2;
      }
      continue;
    }
    const double x = std::strtod(argv[++i], nullptr);
    if (a == "--seed") {
      o.seed = static_cast<uint32_t>(x) ? static_cast<uint32_t>(x) : 1;  // xorshift must not start at 0
    } else if (a == "--p-valid") {
      o.p_valid = static_cast<unsigned>(x);
    } else if (a == "--p-ready") {
      o.p_ready = static_cast<unsigned>(x);
    } else if (a == "--pace") {
      o.pace = x;
    } else if (a == "--window") {
      o.win_a = static_cast<long>(x);
      o.win_b = std::strtol(argv[++i], nullptr, 10);
    } else if (a == "--iso") {
      o.iso = static_cast<long>(x);
    } else if (a == "--max-cycles") {
      o.max_cycles = static_cast<uint64_t>(x);
    } else if (a == "--idle") {
      o.idle = static_cast<uint64_t>(x);
    } else if (a == "--progress") {
      o.progress = static_cast<long>(x);
    } else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::vector<int64_t> in = read_int64(argv[1]);
  if (in.empty() || in.size() % BNN_IN_ELEMS) {
    std::fprintf(stderr, "%s: expected a multiple of %d int64 values\n", argv[1], BNN_IN_ELEMS);
    return 2;
  }
  const long frames = static_cast<long>(in.size() / BNN_IN_ELEMS);
  const uint64_t in_beats = static_cast<uint64_t>(frames) * BNN_IN_BEATS;
  const uint64_t out_beats = static_cast<uint64_t>(frames) * BNN_OUT_BEATS;

  VerilatedContext ctx;
  ctx.fatalOnError(false);
  Bench b(&ctx);
  Vbnn_top* top = b.top_;
  top->probe_iso = 0;
#if BNN_STAGES > 1
  uint32_t capw[BNN_STAGES] = {};  // FIFO k's capacity at bits [(k-1)*32 +: 32] of probe_caps
  for (std::size_t k = 0; k < o.caps.size(); k++) capw[k] = o.caps[k];
  put(top->probe_caps, capw);
#endif
  b.reset();

  std::vector<int64_t> out(static_cast<std::size_t>(frames) * BNN_OUT_ELEMS);
  std::vector<int64_t> frame_rec(static_cast<std::size_t>(frames) * 4, -1);
  std::vector<StageCounts> counts(BNN_STAGES);
  std::vector<int64_t> occ(BNN_STAGES, 0);  // occ[k]: FIFO k (k >= 1)
  std::vector<uint64_t> occ_max(BNN_STAGES, 0), occ_max_window(BNN_STAGES, 0);
  Xorshift rng{o.seed};
  uint32_t words[kInWords], outw[kOutWords];
  uint64_t sent = 0, got = 0, cycle = 0, last_event = 0, busy_cycles = 0;
  bool offering = false, in_window = false;
  int rc = 0;

  while (got < out_beats) {
    // inputs of this cycle
    if (!offering && sent < in_beats) {
      const bool paced = o.pace <= 0 || static_cast<double>(cycle) * BNN_IN_BEATS >= static_cast<double>(sent) * o.pace;
      const bool roll = o.p_valid >= 256 || (rng.next() & 255u) < o.p_valid;
      if (paced && roll) {
        pack_beat(&in[sent * BNN_IN_PER_BEAT], words);
        put(top->in_data, words);
        offering = true;
      }
    }
    top->in_valid = offering;
    top->out_ready = o.p_ready >= 256 || (rng.next() & 255u) < o.p_ready;
    b.sample();
    const bool in_fire = top->in_valid && top->in_ready;
    const bool out_fire = top->out_valid && top->out_ready;
    if (out_fire) get(top->out_data, outw);
    // handshakes of every stage and the FIFOs between them. Stage counts only while every stage has work: in
    // the window and before the input runs out (then the first stages idle while the last ones drain).
    const bool busy = in_window && sent < in_beats;
    busy_cycles += busy;
    for (int s = 0; s < BNN_STAGES; s++) {
      const bool iv = bit(b.probe_, 4 * s), ir = bit(b.probe_, 4 * s + 1);
      const bool ov = bit(b.probe_, 4 * s + 2), orr = bit(b.probe_, 4 * s + 3);
      if (busy) {
        StageCounts& c = counts[s];
        c.in_fire += iv && ir;
        c.in_wait += iv && !ir;
        c.in_starved += !iv && ir;
        c.out_fire += ov && orr;
        c.out_blocked += ov && !orr;
      }
      if (s > 0) occ[s] -= iv && ir;  // stage s took a beat out of FIFO s
      if (s + 1 < BNN_STAGES) occ[s + 1] += ov && orr;  // stage s put one into FIFO s+1
    }
    for (int s = 1; s < BNN_STAGES; s++) {
      const uint64_t v = static_cast<uint64_t>(occ[s]);
      if (v > occ_max[s]) occ_max[s] = v;
      if (in_window && v > occ_max_window[s]) occ_max_window[s] = v;
    }
    b.edge();
    if (ctx.gotFinish()) {
      std::fprintf(stderr, "the design stopped the simulation ($finish) at cycle %llu\n", (unsigned long long)cycle);
      rc = 4;
      break;
    }
    if (in_fire) {
      const long f = static_cast<long>(sent / BNN_IN_BEATS);
      if (sent % BNN_IN_BEATS == 0) frame_rec[4 * f] = static_cast<int64_t>(cycle);
      frame_rec[4 * f + 1] = static_cast<int64_t>(cycle);
      sent++;
      offering = false;
      last_event = cycle;
    }
    if (out_fire) {
      const long f = static_cast<long>(got / BNN_OUT_BEATS);
      const long beat = static_cast<long>(got % BNN_OUT_BEATS);
      if (beat == 0) {
        frame_rec[4 * f + 2] = static_cast<int64_t>(cycle);
        if (f == o.win_a) in_window = true;
        if (f == o.win_b) in_window = false;
      }
      frame_rec[4 * f + 3] = static_cast<int64_t>(cycle);
      for (int e = 0; e < BNN_OUT_PER_BEAT; e++)
        out[static_cast<std::size_t>(f) * BNN_OUT_ELEMS + beat * BNN_OUT_PER_BEAT + e] =
            element(outw, e, BNN_OUT_EB, BNN_OUT_SIGNED != 0);
      got++;
      last_event = cycle;
      if (o.progress > 0 && beat == BNN_OUT_BEATS - 1 && (f + 1) % o.progress == 0) {
        std::printf("frames %ld\n", f + 1);
        std::fflush(stdout);
      }
    }
    cycle++;
    if (cycle >= o.max_cycles || cycle - last_event > o.idle) {
      std::fprintf(stderr, "%s after %llu cycles: %llu of %llu input beats taken, %llu of %llu output beats\n",
                   cycle >= o.max_cycles ? "timeout" : "no progress (deadlock?)", (unsigned long long)cycle,
                   (unsigned long long)sent, (unsigned long long)in_beats, (unsigned long long)got,
                   (unsigned long long)out_beats);
      rc = 3;
      break;
    }
  }
  const uint64_t run_cycles = cycle;

  // Isolation: every stage fed and drained at full speed (probe_iso), FIFOs idle: each stage's own cycles
  // per frame, from the cycles at which it completes an output frame.
  std::vector<std::vector<uint64_t>> iso_ends(BNN_STAGES);
  if (rc == 0 && o.iso > 0) {
    top->probe_iso = 1;
    b.reset();
    std::vector<uint64_t> beats(BNN_STAGES, 0);
    uint64_t t = 0, limit = o.max_cycles;
    int pending = BNN_STAGES;
    while (pending > 0 && t < limit) {
      b.sample();
      for (int s = 0; s < BNN_STAGES; s++) {
        if (bit(b.probe_, 4 * s + 2) && bit(b.probe_, 4 * s + 3)) {
          if (++beats[s] % static_cast<uint64_t>(BNN_STAGE_OUT_BEATS[s]) == 0 &&
              static_cast<long>(iso_ends[s].size()) <= o.iso) {
            iso_ends[s].push_back(t);
            if (static_cast<long>(iso_ends[s].size()) == o.iso + 1) pending--;
          }
        }
      }
      b.edge();
      t++;
    }
    top->probe_iso = 0;
  }

  if (!write_int64(argv[2], out) || !write_int64(argv[4], frame_rec)) {
    std::fprintf(stderr, "cannot write %s or %s\n", argv[2], argv[4]);
    return 2;
  }
  FILE* f = std::fopen(argv[3], "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", argv[3]);
    return 2;
  }
  std::fprintf(f, "{\n  \"cycles\": %llu,\n  \"frames\": %ld,\n  \"in_beats_taken\": %llu,\n  \"out_beats\": %llu,\n",
               (unsigned long long)run_cycles, frames, (unsigned long long)sent, (unsigned long long)got);
  std::fprintf(f, "  \"window\": [%ld, %ld],\n  \"busy_cycles\": %llu,\n", o.win_a, o.win_b,
               (unsigned long long)busy_cycles);
  const char* keys[] = {"in_fire", "in_wait", "in_starved", "out_fire", "out_blocked"};
  for (int k = 0; k < 5; k++) {
    std::vector<uint64_t> v;
    for (const StageCounts& c : counts)
      v.push_back(k == 0 ? c.in_fire : k == 1 ? c.in_wait : k == 2 ? c.in_starved : k == 3 ? c.out_fire : c.out_blocked);
    json_array(f, keys[k], v);
  }
  json_array(f, "fifo_max", occ_max);
  json_array(f, "fifo_max_window", occ_max_window);
  std::fprintf(f, "  \"iso_ends\": [");
  for (int s = 0; s < BNN_STAGES; s++) {
    std::fprintf(f, "%s[", s ? ", " : "");
    for (std::size_t i = 0; i < iso_ends[s].size(); i++)
      std::fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)iso_ends[s][i]);
    std::fprintf(f, "]");
  }
  std::fprintf(f, "]\n}\n");
  std::fclose(f);
  return rc;
}
