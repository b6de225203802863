"""Convolution and pooling over images [B, C, H, W], by im2col: a window view and one matmul.

Windows are taken from the channels-last view `[B, H, W, C]`: a convolution's output is
made channels-last in memory (its `[B, C, H, W]` is a transposed view), so the next layer's
channels-last view is free and each window row `(C, kh, kw)` copies from nearby memory.
The backward passes scatter window gradients back with one strided add per kernel offset
(kh * kw of them), never a loop over elements, examples or channels.

Each primitive, its forward, and its backward `back(g)` (gradients of x, W, b):
- `conv2d(x, W, b, stride, pads, dilation, groups)`: `[cols, 1] @ [W, b].T`, cols the windows
  `[B*OH*OW, kh*kw*C]` of the input padded once channels-last (dilated: every `dilation`-th
  cell of a wider window), each row `(kh, kw, C)` so that the one copy into rows moves runs of
  `kw * C` numbers; back: `g @ W` scattered back to the windows, `g.T @ [cols, 1]` (the
  weight's and the bias's gradients in one matmul). With groups, each matmul runs group by
  group (`_by_group`, one batched matmul) and the bias is added after. An input of few channels
  held channels first (an RGB image: rows of `kw * C` < 16 numbers) takes
  `_conv2d_few_channels`: the rows transposed, `(C, kh, kw, 1)` by `B * OH * OW`, copied from the
  input padded channels first, which saves the transposing copy. `conv2d_reference`,
  rows `(C, kh, kw)` and `np.pad`, is what it is tested against (tests/test_numpy_fast_conv.py).
- `conv_transpose2d(x, W, b, stride, padding, output_padding, dilation, groups)`:
  `x @ W.reshape(C, -1)` scattered into the output, then cropped, `+ b`; back: the windows of
  `g` `@ W.T`, `x.T @` those windows, `sum(g)`. Few output channels (an RGB image: kernel
  rows of `kw * O` < 16 numbers) come out channels first, and the gradient's windows are taken
  as `_conv2d_few_channels` takes an image's.
- `pool2d(x, mode, size, stride, padding, out)`: max (first maximum in the window) or mean of
  each window, over the input padded with -inf or zeros; back: `g` to that maximum, or
  `g / cells` to every cell, then the padding cut off.
- `unpool2d(x, like, size, stride, padding)`: zeros shaped as `like`, x's values put at each
  window's first maximum in `like` (`max_positions`, max_pool2d's indices); back: the gradient
  taken at those cells.
- `upsample2d(x, size, mode)`: `A_h x A_w^T`, one interpolation matrix per axis; back:
  `A_h^T g A_w`.

conv2d's large arrays (the padded input, the rows, its output, the backward's blocks) come
from `scratch.scratch`, which hands back an array of an earlier call once nothing refers to it:
fresh ones cost a page fault per 4 KiB each step. With `relu`, conv2d takes max(0, .) in its node.

The transposed convolution is the input gradient of a convolution: its forward is conv2d's
backward scatter, and its backward takes windows as conv2d's forward does.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...kinds.conv import interpolation
from .autograd import Var, record
from .scratch import scratch as _scratch


def _windows(
    xh: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    axis: int = 1,
) -> np.ndarray:
    """xh: (B, H, W, C) -> (B, OH, OW, C, kh, kw), a read-only view; a dilated kernel's cells
    are `dilation` apart. With `axis` 2, the windows of (B, C, H, W), channels first:
    (B, C, OH, OW, kh, kw). As `sliding_window_view` then strided slices, its strides written
    out (that function's checks cost more than a small convolution's copy)."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    height, width = xh.shape[axis : axis + 2]
    oh = (height - dh * (kh - 1) - 1) // sh + 1
    ow = (width - dw * (kw - 1) - 1) // sw + 1
    st = xh.strides
    shape = xh.shape[:axis] + (oh, ow) + xh.shape[axis + 2 :] + (kh, kw)
    strides = (
        st[:axis]
        + (st[axis] * sh, st[axis + 1] * sw)
        + st[axis + 2 :]
        + (st[axis] * dh, st[axis + 1] * dw)
    )
    return as_strided(xh, shape, strides, writeable=False)


def _scatter(
    cells: np.ndarray,
    shape: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """The adjoint of `_windows`: cells (B, OH, OW, C, kh, kw) summed into (B, H, W, C) `shape`."""
    out = np.zeros(shape, cells.dtype)
    _, oh, ow = cells.shape[:3]
    (sh, sw), (dh, dw) = stride, dilation
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dh, j * dw
            out[:, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw] += (
                cells[..., i, j]
            )
    return out


def _by_group(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (N, G * P), b (G, P, Q) -> (N, G * Q): group g of a's columns times b[g] (one matmul
    when G is 1)."""
    groups, width = b.shape[0], a.shape[0]
    if groups == 1:
        return a @ b[0]
    ag = a.reshape(width, groups, -1).transpose(1, 0, 2)  # (G, N, P)
    return (ag @ b).transpose(1, 0, 2).reshape(width, -1)


def _outer_by_group(a: np.ndarray, b: np.ndarray, groups: int) -> np.ndarray:
    """a (N, G * P), b (N, G * Q) -> (G * P, Q): group g of a's columns, transposed, times
    group g of b's (a weight's gradient, group by group)."""
    if groups == 1:
        return a.T @ b
    rows = a.shape[0]
    ag = a.reshape(rows, groups, -1).transpose(1, 2, 0)  # (G, P, N)
    bg = b.reshape(rows, groups, -1).transpose(1, 0, 2)  # (G, N, Q)
    return (ag @ bg).reshape(-1, bg.shape[2])


def _padded(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """x (B, C, H, W) -> (B, top + H + bottom, left + W + right, C): channels-last, zeros
    around, written once (np.pad would copy twice); a view of x when there is no padding."""
    top, bottom, left, right = pads
    xh = x.transpose(0, 2, 3, 1)
    if not any(pads):
        return xh
    batch, height, width, channels = xh.shape
    out = _scratch((batch, top + height + bottom, left + width + right, channels), x.dtype)
    out[:, :top] = 0.0  # the borders only: the inside is written next
    out[:, top + height :] = 0.0
    out[:, top : top + height, :left] = 0.0
    out[:, top : top + height, left + width :] = 0.0
    out[:, top : top + height, left : left + width] = xh
    return out


def _padded_first(x: np.ndarray, pads: tuple[int, int, int, int]) -> np.ndarray:
    """x (B, C, H, W) -> (B, C, top + H + bottom, left + W + right): zeros around, channels
    first as x is, its borders only zeroed; x itself when there is no padding."""
    top, bottom, left, right = pads
    if not any(pads):
        return x
    batch, channels, height, width = x.shape
    out = _scratch((batch, channels, top + height + bottom, left + width + right), x.dtype)
    out[:, :, :top] = 0.0
    out[:, :, top + height :] = 0.0
    out[:, :, top : top + height, :left] = 0.0
    out[:, :, top : top + height, left + width :] = 0.0
    out[:, :, top : top + height, left : left + width] = x
    return out


def _output_gradient(g: np.ndarray, y4: np.ndarray, relu: bool) -> np.ndarray:
    """g (B, O, OH, OW) as conv2d's rows (B * OH * OW, O), channels-last like its output y4
    (B, OH, OW, O); with `relu`, only where the output is positive (the gradient of max(0, z))."""
    batch, oh, ow, out_channels = y4.shape
    rows = _scratch((batch * oh * ow, out_channels), g.dtype)
    if relu:
        np.multiply(g.transpose(0, 2, 3, 1), y4 > 0, out=rows.reshape(y4.shape))
    else:
        rows.reshape(y4.shape)[...] = g.transpose(0, 2, 3, 1)
    return rows


FEW = 16  # conv2d takes an input channels first when its kernel rows (kw * C) are shorter
BLOCK = 512  # rows of a tall product with few columns that `_blocked_matmul` takes at a time


def _blocked_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """out = a @ b, for a (M, K), b (..., K, N) and out (..., M, N), the rows of a taken BLOCK at
    a time as one batched product: OpenBLAS runs a product of thousands of rows by few columns
    (K and N in the tens) a quarter faster so (8192 x 28 x 16: 0.064 against 0.084 ms; the nine
    kernel offsets of 2048 x 32 x 16: 0.16 against 0.22 ms; bench/blas.py has the shapes)."""
    rows = a.shape[0]
    whole = rows - rows % BLOCK
    if whole < 2 * BLOCK:
        np.matmul(a, b, out=out)
        return
    lead = b.shape[:-2]
    blocks = a[:whole].reshape(-1, BLOCK, a.shape[1], copy=False)  # (blocks, BLOCK, K)
    into = out[..., :whole, :].reshape(lead + blocks.shape[:2] + out.shape[-1:], copy=False)
    np.matmul(blocks, b[..., None, :, :] if lead else b, out=into)
    if whole < rows:
        np.matmul(a[whole:], b, out=out[..., whole:, :])


def _blocked_inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a (M, K) @ b (K, N) for a long K and small M and N (a weight's gradient over thousands of
    windows), K taken BLOCK at a time as one batched product whose blocks are then summed:
    29 x 8192 x 16, an RGB convolution's, 0.08 against 0.10 ms; 48 x 8192 x 8, a transposed
    convolution's to RGB, 0.08 against 0.11 ms."""
    depth = a.shape[1]
    whole = depth - depth % BLOCK
    if whole < 2 * BLOCK:
        return a @ b
    parts = np.matmul(
        a[:, :whole].reshape(a.shape[0], -1, BLOCK).transpose(1, 0, 2),
        b[:whole].reshape(-1, BLOCK, b.shape[1]),
    )
    out = parts.sum(axis=0)
    if whole < depth:
        out += a[:, whole:] @ b[whole:]
    return out


def _scatter_by_phase(
    cells: np.ndarray,
    shape: tuple[int, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> np.ndarray:
    """The adjoint of conv2d's windows without groups: cells (kh * kw, B, OH, OW, C), one
    contiguous block per kernel offset, summed into the channels-last (B, H, W, C) `shape` (or
    a little larger: the rows and columns past it are zeros).

    A cell of offset (i, j) lands at row `i * dh + sh * p`: rows are split by their phase
    (the row mod sh) into `(B, H / sh, sh, sw, W / sw, C)`, where each offset's block is a
    contiguous (OW, C) run per row, one add of long runs per offset instead of runs of C; the
    first block of each phase is copied in rather than added (zeros only past it), and the
    phases are interleaved back in one copy (none with stride 1)."""
    batch, height, width, channels = shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    _, _, oh, ow, _ = cells.shape
    rows, cols = -(-height // sh), -(-width // sw)
    out = _scratch((batch, rows, sh, sw, cols, channels), cells.dtype)
    written = set()  # the phases written so far: the first block of a phase is copied, not added
    for i in range(kh):
        top, phase_h = divmod(i * dh, sh)
        for j in range(kw):
            left, phase_w = divmod(j * dw, sw)
            plane = out[:, :, phase_h, phase_w]
            block = plane[:, top : top + oh, left : left + ow]
            if (phase_h, phase_w) in written:
                block += cells[i * kw + j]
                continue
            written.add((phase_h, phase_w))
            if top or left:
                plane[...] = 0.0
                block += cells[i * kw + j]
            else:  # zeros only past the block
                plane[:, oh:] = 0.0
                plane[:, :oh, ow:] = 0.0
                block[...] = cells[i * kw + j]
    for phase_h in range(sh):
        for phase_w in range(sw):
            if (phase_h, phase_w) not in written:  # no kernel cell lands there
                out[:, :, phase_h, phase_w] = 0.0
    if sh == sw == 1:
        return out.reshape(batch, rows, cols, channels)
    summed = _scratch((batch, rows * sh, cols * sw, channels), cells.dtype)
    summed.reshape(batch, rows, sh, cols, sw, channels)[...] = out.transpose(0, 1, 2, 4, 3, 5)
    return summed


def conv2d(
    x: Var,
    W: Var,
    b: Var | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    relu: bool = False,
) -> Var:
    """x: (B, C, H, W), W: (O, C / groups, kh, kw), b: (O,) -> (B, O, OH, OW).

    pads: (top, bottom, left, right) zeros around x; the kernel's cells `dilation` apart;
    output channel o sees the input channels of its group (o // (O / groups)) only. With
    `relu`, max(0, .) of it in the same node (in place; the gradient passes where the output
    is positive), as `activations.activate(conv2d(...), relu)` but one array and one pass
    fewer each way.

    The windows' rows are laid out `(G, kh, kw, C / G)`, so that each kernel offset's channels
    are contiguous in the channels-last input and the one copy into rows moves runs of
    `kw * C` numbers; W is reordered to match (it is small). Without groups the bias rides in
    the matmul as a column of ones, and its gradient comes out of the weight's matmul.
    """
    out_channels, group_in, kh, kw = W.shape
    if groups == 1 and group_in * kw < FEW and x.value.flags.c_contiguous:
        return _conv2d_few_channels(x, W, b, stride, pads, dilation, relu)
    top, _, left, _ = pads
    xh = _padded(x.value, pads)
    padded = xh.shape  # the backward needs no more of it: xh is freed after the forward
    win = _windows(xh, (kh, kw), stride, dilation)  # (B, OH, OW, C, kh, kw)
    batch, oh, ow = win.shape[:3]
    win = win.reshape(batch, oh, ow, groups, group_in, kh, kw).transpose(0, 1, 2, 3, 5, 6, 4)
    width = win[0, 0, 0].size
    with_ones = b is not None and groups == 1
    cols = _scratch((batch, oh, ow, width + with_ones), xh.dtype)
    cols[..., :width].reshape(win.shape, copy=False)[...] = win  # the one copy
    if with_ones:
        cols[..., width] = 1.0
    cols = cols.reshape(batch * oh * ow, -1)
    per_group = out_channels // groups
    kernel = (
        W.value.reshape(groups, per_group, group_in, kh, kw)
        .transpose(0, 1, 3, 4, 2)
        .reshape(groups, per_group, -1)
    )  # (G, O / G, kh * kw * C / G), as the rows
    if with_ones:
        y = _scratch((cols.shape[0], out_channels), cols.dtype)
        np.matmul(cols, np.concatenate([kernel[0], b.value[:, None]], axis=1).T, out=y)
    else:
        y = _by_group(cols, kernel.transpose(0, 2, 1))
        if b is not None:
            y += b.value
    if relu:
        np.maximum(y, 0.0, out=y)

    def back(g):
        rows = _output_gradient(g, y4, relu)
        gx = gW = gb = None
        if x.needs_grad:
            gxh = scatter(rows)
            gx = gxh[:, top : top + x.shape[2], left : left + x.shape[3]].transpose(0, 3, 1, 2)
        if with_ones and (W.needs_grad or b.needs_grad):
            both = rows.T @ cols  # (O, kh * kw * C + 1): the weight's and the bias's
            gW, gb = both[:, :width], both[:, width]
        elif W.needs_grad:
            gW = _outer_by_group(rows, cols, groups)
        if b is not None and b.needs_grad and gb is None:
            gb = np.ones(rows.shape[0], rows.dtype) @ rows  # a matmul: sum(axis=0) is slower
        if W.needs_grad:  # (O, kh, kw, C / G) back to W's (O, C / G, kh, kw)
            gW = np.ascontiguousarray(
                gW.reshape(out_channels, kh, kw, group_in).transpose(0, 3, 1, 2)
            )
        return gx, gW, gb if b is not None and b.needs_grad else None

    def scatter(rows: np.ndarray) -> np.ndarray:
        """The gradient of the padded channels-last input: rows @ W, one block per kernel
        offset without groups (`_scatter_by_phase`), group by group with them."""
        if groups == 1:
            offsets = kernel[0].reshape(out_channels, kh * kw, group_in).transpose(1, 0, 2)
            cells = _scratch((kh * kw, batch, oh, ow, group_in), rows.dtype)
            _blocked_matmul(rows, offsets, cells.reshape(kh * kw, -1, group_in))
            return _scatter_by_phase(cells, padded, (kh, kw), stride, dilation)
        cells = _by_group(rows, kernel).reshape(batch, oh, ow, groups, kh, kw, group_in)
        grouped = padded[:3] + (groups, group_in)  # `_scatter` into the channels by group
        cells = cells.transpose(0, 1, 2, 3, 6, 4, 5)  # (B, OH, OW, G, C / G, kh, kw)
        return _scatter(cells, grouped, (kh, kw), stride, dilation).reshape(padded)

    y4 = y.reshape(batch, oh, ow, out_channels)
    return record(y4.transpose(0, 3, 1, 2), (x, W) if b is None else (x, W, b), back)


def _conv2d_few_channels(
    x: Var,
    W: Var,
    b: Var | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: tuple[int, int],
    relu: bool,
) -> Var:
    """conv2d without groups of an input of few channels held channels first (an RGB image):
    channels last, its rows would move runs of `kw * C` numbers (9 for RGB and kernel 3) and the
    transposing copy would cost as much again. Here the windows are copied once, from the input
    padded channels first, into the transposed rows `(C, kh, kw [, 1], B, OH, OW)`, each a strided
    run along OW; the matmuls read them transposed (BLAS takes either layout), the rows are in
    W's own order (no reordering of W or of its gradient), and the output is channels last as
    conv2d's. Back: `g @ W` as those transposed rows, added into the padded input one strided
    block per kernel offset."""
    out_channels, channels, kh, kw = W.shape
    top, _, left, _ = pads
    (sh, sw), (dh, dw) = stride, dilation
    xp = _padded_first(x.value, pads)
    win = _windows(xp, (kh, kw), stride, dilation, axis=2)
    batch, _, oh, ow = win.shape[:4]  # (B, C, OH, OW, kh, kw)
    size, with_ones = channels * kh * kw, b is not None
    spread = _scratch((size + with_ones, batch, oh, ow), xp.dtype)
    spread[:size].reshape(channels, kh, kw, batch, oh, ow)[...] = win.transpose(1, 4, 5, 0, 2, 3)
    if with_ones:
        spread[size] = 1.0
    spread = spread.reshape(size + with_ones, -1)  # the rows, transposed: (C * kh * kw [+ 1], N)
    kernel = W.value.reshape(out_channels, size)
    if with_ones:
        kernel = np.concatenate([kernel, b.value[:, None]], axis=1)
    y = _scratch((spread.shape[1], out_channels), xp.dtype)
    _blocked_matmul(spread.T, kernel.T, y)
    if relu:
        np.maximum(y, 0.0, out=y)
    y4 = y.reshape(batch, oh, ow, out_channels)
    padded = xp.shape

    def back(g):
        rows = _output_gradient(g, y4, relu)
        gx = gW = gb = None
        if x.needs_grad:
            cells = (kernel[:, :size].T @ rows.T).reshape(channels, kh, kw, batch, oh, ow)
            gxp = _scratch(padded, rows.dtype, zeros=True)
            for i in range(kh):
                for j in range(kw):
                    at, to = i * dh, j * dw
                    block = gxp[
                        :, :, at : at + sh * (oh - 1) + 1 : sh, to : to + sw * (ow - 1) + 1 : sw
                    ]
                    block += cells[:, i, j].transpose(1, 0, 2, 3)
            gx = gxp[:, :, top : top + x.shape[2], left : left + x.shape[3]]
        if W.needs_grad or (with_ones and b.needs_grad):
            both = _blocked_inner(spread, rows).T  # (O, C * kh * kw [+ 1]): weight's, bias's
            gW = np.ascontiguousarray(both[:, :size]).reshape(W.shape) if W.needs_grad else None
            gb = both[:, size].copy() if with_ones and b.needs_grad else None
        return gx, gW, gb

    return record(y4.transpose(0, 3, 1, 2), (x, W) if b is None else (x, W, b), back)


def conv2d_reference(
    x: Var,
    W: Var,
    b: Var | None,
    stride: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> Var:
    """`conv2d` as it was first written, rows `(C, kh, kw)` and `np.pad`: the reference the
    fast one is tested against (tests/test_numpy_fast_conv.py).

    x: (B, C, H, W), W: (O, C / groups, kh, kw), b: (O,) -> (B, O, OH, OW).

    pads: (top, bottom, left, right) zeros around x; the kernel's cells `dilation` apart;
    output channel o sees the input channels of its group (o // (O / groups)) only.
    """
    out_channels, _, kh, kw = W.shape
    top, bottom, left, right = pads
    xh = x.value.transpose(0, 2, 3, 1)
    if any(pads):
        xh = np.pad(xh, ((0, 0), (top, bottom), (left, right), (0, 0)))
    win = _windows(xh, (kh, kw), stride, dilation)
    batch, oh, ow = win.shape[:3]
    cols = win.reshape(batch * oh * ow, -1)  # copies: (C, kh, kw) per row, as W is laid out
    kernel = W.value.reshape(groups, out_channels // groups, -1)  # (G, O / G, C / G * kh * kw)
    y = _by_group(cols, kernel.transpose(0, 2, 1))
    if b is not None:
        y += b.value

    def back(g):
        rows = g.transpose(0, 2, 3, 1).reshape(-1, out_channels)
        gx = None
        if x.needs_grad:
            cells = _by_group(rows, kernel).reshape(win.shape)
            gxh = _scatter(cells, xh.shape, (kh, kw), stride, dilation)
            gx = gxh[:, top : gxh.shape[1] - bottom, left : gxh.shape[2] - right].transpose(
                0, 3, 1, 2
            )
        gW = _outer_by_group(rows, cols, groups).reshape(W.shape) if W.needs_grad else None
        gb = rows.sum(axis=0) if b is not None and b.needs_grad else None
        return gx, gW, gb

    out = y.reshape(batch, oh, ow, out_channels).transpose(0, 3, 1, 2)
    return record(out, (x, W) if b is None else (x, W, b), back)


def _transposed_size(
    size: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    """A transposed convolution's output (OH, OW) of an input (H, W), and the uncut output's
    (full H, full W), which holds every patch and reaches the kept rows past its end."""
    (height, width), (kh, kw) = size, kernel
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    reach = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    oh = (height - 1) * sh - 2 * ph + reach[0] + output_padding[0]
    ow = (width - 1) * sw - 2 * pw + reach[1] + output_padding[1]
    full_h = max((height - 1) * sh + reach[0], ph + oh)
    full_w = max((width - 1) * sw + reach[1], pw + ow)
    return oh, ow, full_h, full_w


def _transposed_few_outputs(
    x: np.ndarray,
    W: np.ndarray,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    full: tuple[int, int],
) -> np.ndarray:
    """A transposed convolution without groups to few output channels, uncut and without its
    bias: x (B, C, H, W), W (C, O, kh, kw) -> (B, O, rows * sh, cols * sw), channels first,
    at least `full` (full H, full W) and zeros past the patches.

    x is padded below and to the right to (rows, cols), the largest shift of a kernel offset's
    patch within its stride phase, and each image's cells, `W[:, :, i, j].T @ x[b]` for every
    offset at once, come out as (kh, kw, O) planes of that padded (rows, cols) shape: a patch
    shifted by (top, left) is then the plane shifted by `top * cols + left` numbers, flat, since
    what would wrap into the next row is the zero padding. Each offset is one add of runs of
    rows * cols numbers into its phase's plane (the first one a copy), against runs of W numbers
    had the planes kept x's shape; the phases are interleaved in one copy (none at stride 1)."""
    batch, channels, height, width = x.shape
    _, out_channels, kh, kw = W.shape
    (sh, sw), (dh, dw) = stride, dilation
    rows = max(height + (kh - 1) * dh // sh, -(-full[0] // sh))
    cols = max(width + (kw - 1) * dw // sw, -(-full[1] // sw))
    xp = _padded_first(x, (0, rows - height, 0, cols - width))
    plane = rows * cols
    kernel = W.transpose(2, 3, 1, 0).reshape(kh * kw * out_channels, channels)
    cells = _scratch((batch, kh * kw * out_channels, plane), x.dtype)
    np.matmul(kernel, xp.reshape(batch, channels, plane), out=cells)
    cells = cells.reshape(batch, kh, kw, out_channels, plane)
    out = _scratch((batch, out_channels, sh, sw, plane), x.dtype)
    written = set()  # the phases written so far: the first offset of a phase is copied
    for i in range(kh):
        top, phase_h = divmod(i * dh, sh)
        for j in range(kw):
            left, phase_w = divmod(j * dw, sw)
            shift = top * cols + left
            block = out[:, :, phase_h, phase_w, shift:]
            if (phase_h, phase_w) in written:
                block += cells[:, i, j, :, : plane - shift]
                continue
            written.add((phase_h, phase_w))
            out[:, :, phase_h, phase_w, :shift] = 0.0
            block[...] = cells[:, i, j, :, : plane - shift]
    for phase_h in range(sh):
        for phase_w in range(sw):
            if (phase_h, phase_w) not in written:  # no kernel cell lands there
                out[:, :, phase_h, phase_w] = 0.0
    if sh == sw == 1:
        return out.reshape(batch, out_channels, rows, cols)
    summed = _scratch((batch, out_channels, rows * sh, cols * sw), x.dtype)
    summed.reshape(batch, out_channels, rows, sh, cols, sw)[...] = out.reshape(
        batch, out_channels, sh, sw, rows, cols
    ).transpose(0, 1, 4, 2, 5, 3)
    return summed


def conv_transpose2d(
    x: Var,
    W: Var,
    b: Var | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
    relu: bool = False,
) -> Var:
    """`conv_transpose2d_reference` (its docstring says what it computes) in conv2d's fast
    layouts, without groups: forward, one matmul per kernel offset, `x @ W[:, :, i, j]`, into
    contiguous blocks added by stride phase (`_scatter_by_phase`, as conv2d's input gradient);
    back, the output gradient padded once channels last (`_padded`), its windows copied once
    into rows `(kh, kw, O)`, `rows @ W` for x and `x.T @ rows` for W, as conv2d's forward, and
    the bias's gradient summed from the padded gradient by a matmul. With `relu` (without
    groups only), max(0, .) in the same node, as conv2d takes it.

    Few output channels (`kw * O` < FEW: an RGB image) take `_transposed_few_outputs` and come
    out channels first, contiguous but for the cropped border: channels last, the scatter, the
    bias, an activation and a loss would run inner loops of O numbers. Back, the gradient is
    then padded channels first and its windows copied into transposed rows `(O, kh, kw)` by
    `B * H * W`, as `_conv2d_few_channels` does an image's."""
    if groups != 1:
        assert not relu, "relu is taken in the node without groups only"
        return conv_transpose2d_reference(
            x, W, b, stride, padding, output_padding, dilation, groups
        )
    batch, channels, height, width = x.shape
    _, out_channels, kh, kw = W.shape
    ph, pw = padding
    shape = (height, width), (kh, kw), stride, padding, output_padding, dilation
    oh, ow, full_h, full_w = _transposed_size(*shape)
    full = (batch, full_h, full_w, out_channels)
    rows = x.value.transpose(0, 2, 3, 1).reshape(-1, channels)  # (B*H*W, C); a copy if need be
    offsets = W.value.transpose(2, 3, 0, 1).reshape(kh * kw, channels, out_channels)
    few = kw * out_channels < FEW  # an image of few channels (RGB) comes out channels first
    if few:
        summed = _transposed_few_outputs(x.value, W.value, stride, dilation, (full_h, full_w))
        y = summed[:, :, ph : ph + oh, pw : pw + ow]
        if b is not None:
            y += b.value[:, None, None]
    else:
        cells = _scratch((kh * kw, batch, height, width, out_channels), rows.dtype)
        np.matmul(rows, offsets, out=cells.reshape(kh * kw, -1, out_channels))
        summed = _scatter_by_phase(cells, full, (kh, kw), stride, dilation)
        # the kept rows as runs of OW * O numbers: the bias over (B, OH, OW, O) would take
        # inner loops of O numbers
        flat = summed.reshape(batch, summed.shape[1], -1)
        flat = flat[:, ph : ph + oh, pw * out_channels : (pw + ow) * out_channels]
        if b is not None:
            flat += np.tile(b.value, ow)
        y = summed[:, ph : ph + oh, pw : pw + ow].transpose(0, 3, 1, 2)
    if relu:
        np.maximum(y, 0.0, out=y)
    pads = (ph, full[1] - ph - oh, pw, full[2] - pw - ow)
    size = kh * kw * out_channels

    def back(g):
        if relu:  # the gradient of max(0, z) is 1 where the output is positive
            g = g * (y > 0)
        if few:
            spread = windows_first(g)
            gx = gW = None
            if x.needs_grad:  # (C, B, H, W) as (B, C, H, W)
                gx = W.value.reshape(channels, size) @ spread
                gx = gx.reshape(channels, batch, height, width).transpose(1, 0, 2, 3)
            if W.needs_grad:  # (O * kh * kw, C): W's own order, transposed
                gW = np.ascontiguousarray(_blocked_inner(spread, rows).T).reshape(W.shape)
            gb = g.sum(axis=(0, 2, 3)) if b is not None and b.needs_grad else None
            return gx, gW, gb
        gfull = _padded(g, pads)  # (B, full H, full W, O), zeros around g
        win = _windows(gfull, (kh, kw), stride, dilation)[:, :height, :width]  # (.., O, kh, kw)
        cols = _scratch((batch, height, width, size), g.dtype)
        cols.reshape(batch, height, width, kh, kw, out_channels)[...] = win.transpose(
            0, 1, 2, 4, 5, 3
        )  # the one copy, runs of kw * O numbers
        cols = cols.reshape(-1, size)
        kernel = offsets.transpose(1, 0, 2).reshape(channels, size)  # (C, kh * kw * O)
        gx = gW = None
        if x.needs_grad:
            gx = (cols @ kernel.T).reshape(batch, height, width, channels).transpose(0, 3, 1, 2)
        if W.needs_grad:  # (C, kh, kw, O) back to W's (C, O, kh, kw)
            gW = np.ascontiguousarray(
                (rows.T @ cols).reshape(channels, kh, kw, out_channels).transpose(0, 3, 1, 2)
            )
        gb = None
        if b is not None and b.needs_grad:  # a matmul: a sum over three axes is slower
            flat = gfull.reshape(-1, out_channels)
            gb = np.ones(flat.shape[0], flat.dtype) @ flat
        return gx, gW, gb

    def windows_first(g: np.ndarray) -> np.ndarray:
        """The output gradient's windows as `_conv2d_few_channels` takes an image's: g padded
        channels first, copied once into the transposed rows (O, kh, kw) by B * H * W."""
        win = _windows(_padded_first(g, pads), (kh, kw), stride, dilation, axis=2)
        spread = _scratch((out_channels, kh, kw, batch, height, width), g.dtype)
        spread[...] = win[:, :, :height, :width].transpose(1, 4, 5, 0, 2, 3)
        return spread.reshape(size, -1)

    return record(y, (x, W) if b is None else (x, W, b), back)


def conv_transpose2d_reference(
    x: Var,
    W: Var,
    b: Var | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    output_padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> Var:
    """x: (B, C, H, W), W: (C, O / groups, kh, kw), b: (O,) -> (B, O, OH, OW), as
    F.conv_transpose2d; the reference the fast `conv_transpose2d` is tested against.

    OH = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + 1 + output_padding (OW alike):
    every input cell adds x * W[c] into a patch of the output (its cells `dilation` apart),
    patches `stride` apart; then `padding` rows and columns are cut from each side, and
    `output_padding` more kept at the end. Input channel c feeds the outputs of its group only.
    """
    batch, channels, height, width = x.shape
    _, group_out, kh, kw = W.shape
    out_channels = group_out * groups
    ph, pw = padding
    shape = (height, width), (kh, kw), stride, padding, output_padding, dilation
    oh, ow, full_h, full_w = _transposed_size(*shape)
    full = (batch, full_h, full_w)
    rows = x.value.transpose(0, 2, 3, 1).reshape(-1, channels)  # (B*H*W, C)
    kernel = W.value.reshape(groups, channels // groups, -1)  # (G, C / G, O / G * kh * kw)
    cells = _by_group(rows, kernel).reshape(batch, height, width, out_channels, kh, kw)
    yh = _scatter(cells, full + (out_channels,), (kh, kw), stride, dilation)
    yh = yh[:, ph : ph + oh, pw : pw + ow]
    if b is not None:
        yh += b.value

    def back(g):
        gfull = np.zeros(full + (out_channels,), g.dtype)
        gfull[:, ph : ph + oh, pw : pw + ow] = g.transpose(0, 2, 3, 1)
        win = _windows(gfull, (kh, kw), stride, dilation)[:, :height, :width]
        gcols = win.reshape(batch * height * width, -1)  # (O, kh, kw) per row, as W is laid out
        gx = None
        if x.needs_grad:
            gx = _by_group(gcols, kernel.transpose(0, 2, 1))
            gx = gx.reshape(batch, height, width, channels).transpose(0, 3, 1, 2)
        gW = _outer_by_group(rows, gcols, groups).reshape(W.shape) if W.needs_grad else None
        gb = g.sum(axis=(0, 2, 3)) if b is not None and b.needs_grad else None
        return gx, gW, gb

    return record(yh.transpose(0, 3, 1, 2), (x, W) if b is None else (x, W, b), back)


def pool2d(
    x: Var,
    mode: str,
    size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int] = (0, 0),
    out: tuple[int, int] | None = None,
) -> Var:
    """x: (B, C, H, W) -> (B, C, OH, OW): max or avg over each window, as PyTorch pools.

    `padding` cells on each side never win a max and count as zeros in a mean; `out` (OH, OW)
    keeps windows past the padded input (ceil_mode): a mean divides by the cells of its window
    inside the padded input. Without `out`, partial windows are dropped.
    """
    _, _, height, width = x.shape
    (kh, kw), (sh, sw), (ph, pw) = size, stride, padding
    if out is None:
        out = ((height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1)
    oh, ow = out
    # zeros (a mean) or -inf (a max) before, and after as far as the last window reaches
    after = (max(ph, (oh - 1) * sh + kh - height - ph), max(pw, (ow - 1) * sw + kw - width - pw))
    xh = x.value.transpose(0, 2, 3, 1)
    if ph or pw or after != (0, 0):
        fill = -np.inf if mode == "max" else 0.0
        xh = np.pad(xh, ((0, 0), (ph, after[0]), (pw, after[1]), (0, 0)), constant_values=fill)
    win = _windows(xh, size, stride)[:, :oh, :ow]
    cells = kh * kw

    def crop(gxh: np.ndarray) -> tuple[np.ndarray]:
        return (gxh[:, ph : ph + height, pw : pw + width].transpose(0, 3, 1, 2),)

    if mode == "max":
        flat = win.reshape(win.shape[:4] + (cells,))
        first = np.argmax(flat, axis=-1)[..., None]  # the first maximum, as PyTorch's max_pool2d
        y = np.take_along_axis(flat, first, axis=-1)[..., 0]

        def back(g):
            gh = g.transpose(0, 2, 3, 1)[..., None]
            spread = np.zeros(flat.shape, g.dtype)
            np.put_along_axis(spread, first, gh, axis=-1)
            return crop(_scatter(spread.reshape(win.shape), xh.shape, size, stride))
    else:
        # cells of each window inside the padded input: kh * kw but at the ceil-mode edge
        rows = np.minimum(np.arange(oh) * sh + kh, height + 2 * ph) - np.arange(oh) * sh
        cols = np.minimum(np.arange(ow) * sw + kw, width + 2 * pw) - np.arange(ow) * sw
        count = (rows[:, None] * cols[None, :])[None, :, :, None].astype(xh.dtype)
        y = win.sum(axis=(-2, -1)) / count

        def back(g):
            gh = (g.transpose(0, 2, 3, 1) / count)[..., None, None]
            return crop(_scatter(np.broadcast_to(gh, win.shape), xh.shape, size, stride))

    return record(y.transpose(0, 3, 1, 2), (x,), back)


def max_positions(
    x: np.ndarray,
    size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    out: tuple[int, int],
) -> np.ndarray:
    """x (B, C, H, W) -> (B, C, OH * OW): where each window's first maximum lies in x, as flat
    indices into H * W (max_pool2d's return_indices); `out` (OH, OW) is the pool's output."""
    _, _, height, width = x.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = size, stride, padding, out
    after = (max(ph, (oh - 1) * sh + kh - height - ph), max(pw, (ow - 1) * sw + kw - width - pw))
    xh = np.pad(
        x.transpose(0, 2, 3, 1),
        ((0, 0), (ph, after[0]), (pw, after[1]), (0, 0)),
        constant_values=-np.inf,
    )
    win = _windows(xh, size, stride)[:, :oh, :ow]
    first = np.argmax(win.reshape(win.shape[:4] + (kh * kw,)), axis=-1)  # (B, OH, OW, C)
    rows = np.arange(oh)[None, :, None, None] * sh + first // kw - ph
    cols = np.arange(ow)[None, None, :, None] * sw + first % kw - pw
    flat = (rows * width + cols).transpose(0, 3, 1, 2)
    return flat.reshape(flat.shape[0], flat.shape[1], -1)


def unpool2d(
    x: Var,
    like: Var,
    size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> Var:
    """x (B, C, OH, OW), like (B, C, H, W) -> (B, C, H, W), as F.max_unpool2d with a max pool's
    indices: x's values at the first maximum of each of the pool's windows over `like`, zeros
    elsewhere. back: each value takes the gradient at its cell; `like` takes none."""
    batch, channels, height, width = like.shape
    at = max_positions(like.value, size, stride, padding, x.shape[-2:])
    y = np.zeros((batch, channels, height * width), x.value.dtype)
    np.put_along_axis(y, at, x.value.reshape(batch, channels, -1), axis=2)

    def back(g: np.ndarray) -> tuple:
        gx = np.take_along_axis(g.reshape(batch, channels, -1), at, axis=2)
        return gx.reshape(x.shape), None

    return record(y.reshape(like.shape), (x, like), back)


def upsample2d(x: Var, size: tuple[int, int], mode: str) -> Var:
    """x (..., C, H, W) -> (..., C, *size): `A_h x A_w^T` with the axes' interpolation matrices
    (kinds.conv.interpolation: nearest, or bilinear as PyTorch's align_corners=False); the
    gradient is `A_h^T g A_w`."""
    h, w = x.shape[-2:]
    a_h = np.asarray(interpolation(h, size[0], mode), x.value.dtype)
    a_w = np.asarray(interpolation(w, size[1], mode), x.value.dtype)
    y = np.einsum("oh,...hw,pw->...op", a_h, x.value, a_w, optimize=True)

    def back(g: np.ndarray) -> tuple:
        return (np.einsum("oh,...op,pw->...hw", a_h, g, a_w, optimize=True),)

    return record(y, (x,), back)
