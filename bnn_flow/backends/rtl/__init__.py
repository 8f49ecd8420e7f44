"""RTL back-end: the hand-written Verilog layer library (verilog/) and the memory-init files it reads."""
