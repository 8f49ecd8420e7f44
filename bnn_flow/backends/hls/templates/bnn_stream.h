// bnn_stream.h - hls::stream for C-simulation with plain g++ (no vendor install).
//
// Under Vitis/Vivado HLS (synthesis or their csim) the vendor's <hls_stream.h> is used instead.
// C-simulation runs the layers of a DATAFLOW region one after the other, so a stream must hold a whole
// frame: it is an unbounded FIFO. It keeps its storage between frames (a vector that is reset, never
// shrunk, once drained), so a steady-state frame allocates nothing. Reading an empty stream is a bug in
// the design (a producer/consumer count mismatch): it aborts with the stream's name, as Vitis reports it.
#ifndef BNN_STREAM_H
#define BNN_STREAM_H

#if defined(__SYNTHESIS__) || defined(__VITIS_HLS__) || defined(__VIVADO_HLS__) || defined(BNN_VENDOR_STREAM)
#include <hls_stream.h>
#else
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace hls {

template <typename T>
class stream {
 public:
  stream() : name_("stream") {}
  explicit stream(const char* name) : name_(name) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;

  void write(const T& v) { buf_.push_back(v); }
  bool write_nb(const T& v) {
    write(v);
    return true;
  }
  T read() {
    if (head_ == buf_.size()) {
      std::fprintf(stderr, "hls::stream '%s' read while empty\n", name_.c_str());
      std::abort();
    }
    T v = buf_[head_++];
    if (head_ == buf_.size()) {  // drained: reuse the storage from the start
      buf_.clear();
      head_ = 0;
    }
    return v;
  }
  void read(T& v) { v = read(); }
  bool read_nb(T& v) {
    if (empty()) return false;
    v = read();
    return true;
  }
  void operator>>(T& v) { v = read(); }
  void operator<<(const T& v) { write(v); }
  bool empty() const { return head_ == buf_.size(); }
  bool full() const { return false; }
  std::size_t size() const { return buf_.size() - head_; }
  const std::string& name() const { return name_; }

 private:
  std::vector<T> buf_;
  std::size_t head_ = 0;
  std::string name_;
};

}  // namespace hls
#endif
#endif  // BNN_STREAM_H
