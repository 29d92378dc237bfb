"""Raw loops, one file per op family: NumPy reference, Numba CPU kernel, Numba CUDA kernel, one dispatcher."""
