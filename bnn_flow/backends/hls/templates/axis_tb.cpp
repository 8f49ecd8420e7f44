// axis_tb.cpp - C-simulation testbench of the AXI-Stream wrapper (bnn_axis), the way the AXI DMA drives it.
//
//   axis_tb IN.bin FRAMES OUT.bin LAST.txt
// IN.bin: the DMA's memory image of the input (boards/pynq/packing.py's pack()); it is cut into BNN_BUS_IN_W-bit
// little-endian bus words. OUT.bin: the output bus words, little-endian, as S2MM writes them to memory.
// LAST.txt: one character per output word, its TLAST bit. Exit 2 when the wrapper leaves input words unread.
// Compiled with -DBNN_BUS_IN_W=... -DBNN_BUS_OUT_W=... (overlay.json's bus widths) and -DBNN_VENDOR_STREAM
// (so the core and the wrapper share one hls::stream).
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <ap_axi_sdata.h>
#include <hls_stream.h>

static const int BI = BNN_BUS_IN_W;
static const int BO = BNN_BUS_OUT_W;
typedef ap_axiu<BI, 0, 0, 0> in_word_t;
typedef ap_axiu<BO, 0, 0, 0> out_word_t;

void bnn_axis(hls::stream<in_word_t> &in_axis, hls::stream<out_word_t> &out_axis, unsigned frames);

static std::vector<unsigned char> read_file(const char *path) {
  std::vector<unsigned char> bytes;
  FILE *f = std::fopen(path, "rb");
  if (!f) {
    std::fprintf(stderr, "axis_tb: cannot open %s\n", path);
    std::exit(1);
  }
  int c;
  while ((c = std::fgetc(f)) != EOF) bytes.push_back((unsigned char)c);
  std::fclose(f);
  return bytes;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: axis_tb IN.bin FRAMES OUT.bin LAST.txt\n");
    return 1;
  }
  std::vector<unsigned char> bytes = read_file(argv[1]);
  const size_t words = bytes.size() / (BI / 8);
  hls::stream<in_word_t> in;
  hls::stream<out_word_t> out;
  for (size_t w = 0; w < words; w++) {
    in_word_t word;
    for (int k = 0; k < BI / 8; k++) word.data.range(8 * k + 7, 8 * k) = bytes[w * (BI / 8) + k];
    word.keep = -1;
    word.strb = -1;
    word.last = (w + 1 == words);  // MM2S raises TLAST at the end of the transfer
    in.write(word);
  }
  bnn_axis(in, out, (unsigned)std::strtoul(argv[2], 0, 10));
  if (!in.empty()) {
    std::fprintf(stderr, "axis_tb: the wrapper left input words unread\n");
    return 2;
  }
  FILE *o = std::fopen(argv[3], "wb");
  FILE *l = std::fopen(argv[4], "w");
  while (!out.empty()) {
    out_word_t word = out.read();
    for (int k = 0; k < BO / 8; k++) std::fputc((int)word.data.range(8 * k + 7, 8 * k).to_uint(), o);
    std::fputc(word.last ? '1' : '0', l);
  }
  std::fclose(o);
  std::fclose(l);
  return 0;
}
