"""Hashed lattice noise: gradient noise, its fractal sum and pixel noise, seeded and window-free."""

from __future__ import annotations

import numpy as np

from geomap.kernels import mix64 as _mix

_M1, _M2, _M3 = (np.uint64(v) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))
_ANGLES = 2 * np.pi * np.arange(16) / 16
_GX, _GY = np.cos(_ANGLES), np.sin(_ANGLES)


def _key(seed: int, channel: int, octave: int = 0) -> np.uint64:
    """Well-mixed 64-bit key of a seed and a noise channel (each used once in this package)."""
    stream = 64 * channel + octave
    k = np.array([(seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03) % 2**64], np.uint64)
    return _mix(k)[0]


def _hash(ix: np.ndarray, iy: np.ndarray, key: np.uint64) -> np.ndarray:
    """Hash of integer lattice coordinates (int64 arrays) under a key."""
    h = _mix(np.asarray(ix, np.int64).view(np.uint64) * _M1 + key)
    return _mix(h ^ (np.asarray(iy, np.int64).view(np.uint64) * _M3))


def _unit(h: np.ndarray, part: int = 0) -> np.ndarray:
    """Uniform [0, 1) from 16 bits of a hash; ``part`` 0..3 picks which 16."""
    return ((h >> np.uint64(16 * part)) & np.uint64(0xFFFF)).astype(np.float64) / 65536.0


def _noise(x: np.ndarray, y: np.ndarray, scale: float, key: np.uint64) -> np.ndarray:
    """Gradient (Perlin) noise of feature size ``scale`` metres, roughly in [-1, 1]."""
    gx, gy = x / scale, y / scale
    fx0, fy0 = np.floor(gx), np.floor(gy)
    ax = fx0.astype(np.int64).view(np.uint64) * _M1
    ay = (fy0.astype(np.int64).view(np.uint64) * _M3) ^ key
    hx, hy = (ax, ax + _M1), (ay, ((ay ^ key) + _M3) ^ key)  # lattice terms of x, x+1 and y, y+1
    fx, fy = gx - fx0, gy - fy0

    def corner(dx: int, dy: int) -> np.ndarray:
        h = hx[dx] ^ hy[dy]
        g = (((h ^ (h >> np.uint64(29))) * _M2) >> np.uint64(60)).astype(np.intp)
        return _GX[g] * (fx - dx) + _GY[g] * (fy - dy)

    n00, n10, n01, n11 = corner(0, 0), corner(1, 0), corner(0, 1), corner(1, 1)
    u = fx * fx * fx * (fx * (fx * 6 - 15) + 10)
    v = fy * fy * fy * (fy * (fy * 6 - 15) + 10)
    bottom = n00 + u * (n10 - n00)
    return 1.4 * (bottom + v * (n01 + u * (n11 - n01) - bottom))


def _fbm(x: np.ndarray, y: np.ndarray, scale: float, octaves: int, seed: int, channel: int):
    """Fractal sum of ``octaves`` gradient noises, halving scale and amplitude each time."""
    total, norm = 0.0, 0.0
    for octave in range(octaves):
        amp = 0.5**octave
        total = total + amp * _noise(x, y, scale / 2**octave, _key(seed, channel, octave))
        norm += amp
    return total / norm


def _white(x: np.ndarray, y: np.ndarray, seed: int, channel: int) -> np.ndarray:
    """Unit-variance pixel noise, a hash of the centimetre-rounded coordinates."""
    h = _hash(np.floor(x * 100 + 0.5), np.floor(y * 100 + 0.5), _key(seed, channel))
    return (_unit(h, 0) + _unit(h, 1) + _unit(h, 2) - 1.5) * 2.0
