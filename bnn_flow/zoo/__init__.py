"""Released models (models/zoo/): the compact file format (`format`) and run <-> zoo file <-> QONNX (`model`)."""
