"""Raw datasets (synthetic generator, MPII parser) and the processed HDF5 files."""
