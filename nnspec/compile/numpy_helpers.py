"""The functions a compiled NumPy file may carry, as source text: `HELPERS[name] = (source, needs)`.

An emitted file copies in only the helpers its layers use (and those they need). Each computes
what the NumPy backend computes in evaluation (backends/numpy: activations.py, image.py, cells.py,
kinds.py), operation for operation, so that the outputs agree to the last bit where NumPy allows.
The sources are written as ruff formats them: the emitted file passes `ruff format --check`.
"""

from __future__ import annotations

from graphlib import TopologicalSorter

HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {}


def helper(name: str, source: str, *needs: str) -> None:
    HELPERS[name] = (source.strip("\n") + "\n", needs)


def with_needs(names: set[str]) -> list[str]:
    """`names` and every helper they need, each after what it needs, else in name order."""
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(HELPERS[name][1])
    graph = {name: set(HELPERS[name][1]) for name in sorted(wanted)}
    sorter = TopologicalSorter(graph)
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


# ---- inputs ------------------------------------------------------------------------------------
helper(
    "_bind",
    '''
def _bind(names, args, kwargs):
    """Positional values in input order, then named ones: each input exactly once."""
    if len(args) > len(names):
        raise TypeError(f"the network takes {len(names)} inputs ({', '.join(names)})")
    data = dict(zip(names, args, strict=False))
    for name, value in kwargs.items():
        if name not in names:
            raise TypeError(f"the network has no input {name!r}; its inputs: {', '.join(names)}")
        if name in data:
            raise TypeError(f"input {name!r} is given twice")
        data[name] = value
    missing = [name for name in names if name not in data]
    if missing:
        raise TypeError(f"missing input {', '.join(map(repr, missing))}")
    return [data[name] for name in names]
''',
)

helper(
    "_input",
    '''
def _input(name, value, dims, seq=False, steps=None):
    """An input as DTYPE: [B, *dims]; a sequence [B, T, *dims] (`seq`: of any length, or of that
    many steps); one value held for `steps` steps, [B, *dims] (or [B, steps, *dims], one a step).
    A last axis of 1 may be left out."""
    x = np.asarray(value)
    if x.dtype.kind not in "biuf":
        raise ValueError(f"input {name!r} must hold numbers, not {x.dtype}")
    x = x.astype(DTYPE, copy=False)
    if 0 in x.shape:
        raise ValueError(f"input {name!r} receives an empty array, of shape {list(x.shape)}")
    timed = seq is not False or steps is not None
    length = steps if steps is not None else None if seq is True else seq or None
    for inner in [dims] + ([()] if dims == (1,) else []):
        if (not timed or steps is not None) and x.shape[1:] == inner:
            x = x if inner == dims else x[..., None]
            if steps is not None:  # the same value at every step
                x = np.broadcast_to(x[:, None], (x.shape[0], steps) + x.shape[1:])
            return x
        per_step = timed and x.ndim == 2 + len(inner) and x.shape[2:] == inner
        if per_step and (length is None or x.shape[1] == length):
            return x if inner == dims else x[..., None]
    forms = [[]] if not timed or steps is not None else []
    forms += [["T" if length is None else str(length)]] if timed else []
    wanted = " or ".join("[" + ", ".join(["B", *f, *map(str, dims)]) + "]" for f in forms)
    raise ValueError(f"input {name!r} takes {wanted}, but receives {list(x.shape)}")
''',
)

helper(
    "_agree",
    '''
def _agree(arrays, timed):
    """The inputs have one batch size, and the timed ones one number of steps."""
    for what, axis, names in (("batch size", 0, list(arrays)), ("number of steps", 1, timed)):
        sizes = {name: arrays[name].shape[axis] for name in names}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"the inputs disagree on the {what}: {sizes}")
''',
)

# ---- time --------------------------------------------------------------------------------------
helper(
    "_shift",
    '''
def _shift(x):
    """[B, T, ...] one step later: zeros at the first step (a `~>` link)."""
    y = np.zeros_like(x)
    y[:, 1:] = x[:, :-1]
    return y
''',
)

helper(
    "_along_time",
    '''
def _along_time(x, steps):
    """[B, ...] -> [B, steps, ...]: a static value met at every step."""
    return np.broadcast_to(x[:, None], (x.shape[0], steps) + x.shape[1:])
''',
)

helper(
    "_fold_time",
    '''
def _fold_time(f, x):
    """f over an image [B, T, C, H, W], time folded into the batch."""
    y = f(x.reshape((-1,) + x.shape[2:]))
    return y.reshape(x.shape[:2] + y.shape[1:])
''',
)

# ---- activations -------------------------------------------------------------------------------
helper(
    "_sigmoid",
    '''
def _sigmoid(x):
    """1 / (1 + exp(-x)); exp(-x) overflows to inf for very negative x, giving exactly 0."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))
''',
)

helper(
    "_softmax",
    '''
def _softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) over `axis`, from x minus its maximum."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
''',
)

helper(
    "_step",
    '''
def _step(x):
    """1 where x > 0, else 0."""
    return (x > 0).astype(x.dtype)
''',
)

helper(
    "_leaky_relu",
    """
def _leaky_relu(x, alpha):
    return np.where(x > 0, x, alpha * x)
""",
)

helper(
    "_elu",
    """
def _elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
""",
)

helper(
    "_softplus",
    '''
def _softplus(x):
    """log(1 + exp(x)), without overflow."""
    return np.logaddexp(0.0, x).astype(x.dtype, copy=False)
''',
)

helper(
    "_silu",
    '''
def _silu(x):
    """x * sigmoid(x)."""
    return x * _sigmoid(x)
''',
    "_sigmoid",
)

helper(
    "_mish",
    '''
def _mish(x):
    """x * tanh(softplus(x))."""
    return x * np.tanh(_softplus(x))
''',
    "_softplus",
)

helper(
    "_hardtanh",
    '''
def _hardtanh(x):
    """x clipped to [-1, 1]."""
    return np.clip(x, -1.0, 1.0)
''',
)

helper(
    "_selu",
    '''
def _selu(x):
    """scale * (x if x > 0 else alpha * (exp(x) - 1)), with PyTorch's alpha and scale."""
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
''',
)

helper(
    "_erf",
    '''
# erf's Taylor series, sum_n (-1)^n 2 / sqrt(pi) x^(2n+1) / (n! (2n+1)): 40 terms reach float64
# precision for |x| <= 2; beyond 2, 50 terms of erfc's continued fraction reach 2e-16
_ERF_SERIES = np.array(
    [2.0 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(40)]
)


def _erf(x):
    """The error function, elementwise, in float64 (NumPy has none; gelu needs it exact)."""
    z = np.abs(np.asarray(x, dtype=np.float64))
    near = np.minimum(z, 2.0)
    series = np.full_like(z, _ERF_SERIES[-1])
    for c in _ERF_SERIES[-2::-1]:  # Horner's rule in x^2
        series = series * (near * near) + c
    series *= near
    far = np.maximum(z, 2.0)
    fraction = far.copy()
    for k in range(50, 0, -1):
        fraction = far + (0.5 * k) / fraction
    tail = 1.0 - np.exp(-far * far) / (math.sqrt(math.pi) * fraction)
    result = np.where(z <= 2.0, series, tail)
    return (np.sign(x) * result).astype(np.result_type(x, np.float32), copy=False)
''',
)

helper(
    "_gelu",
    '''
def _gelu(x):
    """x times the standard normal CDF at x (the exact gelu, not the tanh approximation)."""
    return x * (0.5 * (1.0 + _erf(x * math.sqrt(0.5))))
''',
    "_erf",
)

# ---- images ------------------------------------------------------------------------------------
helper(
    "_windows",
    '''
def _windows(xh, kernel, stride, dilation=(1, 1)):
    """xh: (B, H, W, C) -> (B, OH, OW, C, kh, kw), a view; a dilated kernel's cells `dilation`
    apart."""
    (dh, dw) = dilation
    reach = (dh * (kernel[0] - 1) + 1, dw * (kernel[1] - 1) + 1)
    view = sliding_window_view(xh, reach, axis=(1, 2))[:, :: stride[0], :: stride[1]]
    return view[..., ::dh, ::dw]
''',
)

helper(
    "_conv2d",
    '''
def _conv2d(x, w, b, stride, pads, dilation=(1, 1), groups=1):
    """x (B, C, H, W), w (O, C / groups, kh, kw), b (O,) or None -> (B, O, OH, OW),
    cross-correlation.

    pads: (top, bottom, left, right) zeros around x; the kernel's cells `dilation` apart; one
    matmul over the windows (im2col), batched over the groups.
    """
    top, bottom, left, right = pads
    xh = x.transpose(0, 2, 3, 1)
    if any(pads):
        xh = np.pad(xh, ((0, 0), (top, bottom), (left, right), (0, 0)))
    windows = _windows(xh, w.shape[2:], stride, dilation)
    batch, oh, ow = windows.shape[:3]
    kernel = w.reshape(groups, w.shape[0] // groups, -1).transpose(0, 2, 1)
    y = _by_group(windows.reshape(batch * oh * ow, -1), kernel)
    if b is not None:
        y += b
    return y.reshape(batch, oh, ow, -1).transpose(0, 3, 1, 2)
''',
    "_windows",
    "_by_group",
)

helper(
    "_by_group",
    '''
def _by_group(a, b):
    """a (N, G * P), b (G, P, Q) -> (N, G * Q): group g of a's columns times b[g]."""
    groups, rows = b.shape[0], a.shape[0]
    if groups == 1:
        return a @ b[0]
    return (a.reshape(rows, groups, -1).transpose(1, 0, 2) @ b).transpose(1, 0, 2).reshape(rows, -1)
''',
)

helper(
    "_scatter",
    '''
def _scatter(cells, shape, kernel, stride, dilation=(1, 1)):
    """The adjoint of `_windows`: cells (B, OH, OW, C, kh, kw) summed into (B, H, W, C) `shape`."""
    out = np.zeros(shape, cells.dtype)
    oh, ow = cells.shape[1:3]
    (sh, sw), (dh, dw) = stride, dilation
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            top, left = i * dh, j * dw
            out[:, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw] += (
                cells[..., i, j]
            )
    return out
''',
)

helper(
    "_conv_transpose2d",
    '''
def _conv_transpose2d(x, w, b, stride, padding, output_padding, dilation=(1, 1), groups=1):
    """x (B, C, H, W), w (C, O / groups, kh, kw), b (O,) or None -> (B, O, OH, OW), as PyTorch's
    conv_transpose2d: every input cell adds x * w[c] into a patch of the output (its cells
    `dilation` apart), patches `stride` apart; then `padding` is cut from each side and
    `output_padding` kept at the end."""
    batch, channels, height, width = x.shape
    _, group_out, kh, kw = w.shape
    out_channels = group_out * groups
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    reach = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    oh = (height - 1) * sh - 2 * ph + reach[0] + output_padding[0]
    ow = (width - 1) * sw - 2 * pw + reach[1] + output_padding[1]
    full = (
        batch,
        max((height - 1) * sh + reach[0], ph + oh),
        max((width - 1) * sw + reach[1], pw + ow),
    )
    rows = x.transpose(0, 2, 3, 1).reshape(-1, channels)
    cells = _by_group(rows, w.reshape(groups, channels // groups, -1))
    cells = cells.reshape(batch, height, width, out_channels, kh, kw)
    yh = _scatter(cells, full + (out_channels,), (kh, kw), stride, dilation)
    yh = yh[:, ph : ph + oh, pw : pw + ow]
    if b is not None:
        yh += b
    return yh.transpose(0, 3, 1, 2)
''',
    "_scatter",
    "_by_group",
)

helper(
    "_pool2d",
    '''
def _pool2d(x, mode, size, stride, padding=(0, 0), out=None):
    """x (B, C, H, W) -> (B, C, OH, OW): the max or mean of each window, as PyTorch pools.

    Padding never wins a max and counts as zeros in a mean; `out` (OH, OW) keeps windows past the
    end (ceil mode), where a mean divides by its window's cells inside the padded input.
    """
    height, width = x.shape[2:]
    (kh, kw), (sh, sw), (ph, pw) = size, stride, padding
    if out is None:
        out = ((height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1)
    oh, ow = out
    after = (max(ph, (oh - 1) * sh + kh - height - ph), max(pw, (ow - 1) * sw + kw - width - pw))
    xh = x.transpose(0, 2, 3, 1)
    if ph or pw or after != (0, 0):
        fill = -np.inf if mode == "max" else 0.0
        xh = np.pad(xh, ((0, 0), (ph, after[0]), (pw, after[1]), (0, 0)), constant_values=fill)
    windows = _windows(xh, size, stride)[:, :oh, :ow]
    if mode == "max":
        flat = windows.reshape(windows.shape[:4] + (kh * kw,))
        first = np.argmax(flat, axis=-1)[..., None]
        y = np.take_along_axis(flat, first, axis=-1)[..., 0]
    else:
        rows = np.minimum(np.arange(oh) * sh + kh, height + 2 * ph) - np.arange(oh) * sh
        cols = np.minimum(np.arange(ow) * sw + kw, width + 2 * pw) - np.arange(ow) * sw
        count = (rows[:, None] * cols[None, :])[None, :, :, None].astype(xh.dtype)
        y = windows.sum(axis=(-2, -1)) / count
    return y.transpose(0, 3, 1, 2)
''',
    "_windows",
)

helper(
    "_unpool2d",
    '''
def _unpool2d(x, like, size, stride, padding):
    """x (B, C, OH, OW), like (B, C, H, W) -> (B, C, H, W), as PyTorch's max_unpool2d with a max
    pool's indices: x's values at the first maximum of each window over `like`, zeros elsewhere."""
    batch, channels, height, width = like.shape
    (kh, kw), (sh, sw), (ph, pw) = size, stride, padding
    oh, ow = x.shape[2:]
    after = (max(ph, (oh - 1) * sh + kh - height - ph), max(pw, (ow - 1) * sw + kw - width - pw))
    xh = np.pad(
        like.transpose(0, 2, 3, 1),
        ((0, 0), (ph, after[0]), (pw, after[1]), (0, 0)),
        constant_values=-np.inf,
    )
    windows = _windows(xh, size, stride)[:, :oh, :ow]
    first = np.argmax(windows.reshape(windows.shape[:4] + (kh * kw,)), axis=-1)
    rows = np.arange(oh)[None, :, None, None] * sh + first // kw - ph
    cols = np.arange(ow)[None, None, :, None] * sw + first % kw - pw
    at = (rows * width + cols).transpose(0, 3, 1, 2).reshape(batch, channels, -1)
    y = np.zeros((batch, channels, height * width), x.dtype)
    np.put_along_axis(y, at, x.reshape(batch, channels, -1), axis=2)
    return y.reshape(like.shape)
''',
    "_windows",
)

helper(
    "_interpolation",
    '''
def _interpolation(size, cells, mode):
    """The (cells, size) matrix that resizes one axis: nearest, or linear as PyTorch's
    align_corners=False (output cell i reads (i + 0.5) * size / cells - 0.5, clamped at the
    edges); nearest copies cell i // factor, or floor(i * (size / cells)) in float32 as PyTorch's
    kernel rounds."""
    out = np.arange(cells)
    matrix = np.zeros((cells, size))
    if mode == "nearest":
        if cells % size == 0:
            matrix[out, out // (cells // size)] = 1.0
        else:
            scale = np.float32(size) / np.float32(cells)
            low = np.floor(out.astype(np.float32) * scale).astype(int)
            matrix[out, np.minimum(low, size - 1)] = 1.0
        return matrix
    source = np.maximum((size / cells) * (out + 0.5) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), size - 1)
    high = np.minimum(low + 1, size - 1)
    np.add.at(matrix, (out, low), 1.0 - (source - low))
    np.add.at(matrix, (out, high), source - low)
    return matrix
''',
)

helper(
    "_upsample2d",
    '''
def _upsample2d(x, size, mode):
    """x (..., C, H, W) -> (..., C, *size): A_h x A_w^T."""
    a_h = _interpolation(x.shape[-2], size[0], mode).astype(x.dtype)
    a_w = _interpolation(x.shape[-1], size[1], mode).astype(x.dtype)
    return np.einsum("oh,...hw,pw->...op", a_h, x, a_w, optimize=True)
''',
    "_interpolation",
)

# ---- positional encodings ----------------------------------------------------------------------
helper(
    "_sinusoids",
    '''
def _sinusoids(steps, width):
    """Vaswani et al.'s encoding [steps, width], in float64:
    PE[t, 2i] = sin(t / 10000^(2i / width)), PE[t, 2i + 1] = cos of the same angle."""
    t = np.arange(steps, dtype=np.float64)[:, None]
    angle = t * 10000.0 ** (-np.arange(0, width, 2, dtype=np.float64) / width)
    pe = np.zeros((steps, width))
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : width // 2])
    return pe
''',
)

helper(
    "_learned_positions",
    '''
def _learned_positions(x, weight):
    """x (..., L, d) + the first L rows of a learned encoding [max_len, d]."""
    steps = x.shape[-2]
    if steps > weight.shape[0]:
        raise ValueError(
            f"a learned positional encoding has {weight.shape[0]} positions (max_len), but the "
            f"sequence has {steps} steps"
        )
    return x + weight[:steps]
''',
)

# ---- normalisation -----------------------------------------------------------------------------
helper(
    "_batchnorm2d",
    '''
def _batchnorm2d(x, mean, var, weight, bias, eps):
    """Evaluation over images (..., C, H, W): (x - mean) / sqrt(var + eps) * weight + bias, each
    of those per channel (C,)."""
    mean, var, weight, bias = (v[:, None, None] for v in (mean, var, weight, bias))
    return (x - mean) * (var + eps) ** -0.5 * weight + bias
''',
)

helper(
    "_layernorm",
    '''
def _layernorm(x, w, b, axes, eps):
    """(x - mean) / sqrt(var + eps) over `axes` (the biased variance), times w, plus b."""
    count = math.prod(x.shape[a] for a in axes)
    centred = x - x.sum(axis=axes, keepdims=True) * (1.0 / count)
    var = (centred * centred).sum(axis=axes, keepdims=True) * (1.0 / count)
    return centred * (var + eps) ** -0.5 * w + b
''',
)

# ---- recurrent cells ---------------------------------------------------------------------------
helper(
    "_rnn_step",
    '''
def _rnn_step(xg, h, w_hh, b_hh, act):
    """xg (B, H) = x W_ih^T + b_ih, h (B, H) or None (zeros) -> act(xg + h W_hh^T + b_hh)."""
    if h is not None:
        z = xg + (h @ w_hh.T if b_hh is None else h @ w_hh.T + b_hh)
    else:
        z = xg if b_hh is None else xg + b_hh
    return act(z)
''',
)

helper(
    "_rnn",
    '''
def _rnn(xg, w_hh, b_hh, act, h=None):
    """xg (B, T, H) = x W_ih^T + b_ih -> h (B, T, H), from h (B, H), or zeros (None)."""
    steps = []
    for t in range(xg.shape[1]):
        h = _rnn_step(xg[:, t], h, w_hh, b_hh, act)
        steps.append(h)
    return np.stack(steps, 1)
''',
    "_rnn_step",
)

helper(
    "_gru_step",
    '''
def _gru_step(xg, h, w_hh, b_hh):
    """xg (B, 3H) = x W_ih^T + b_ih, h (B, H) or None (zeros) -> h (B, H), PyTorch's GRUCell
    with its gates r, z, n in that order."""
    xr, xz, xn = _thirds(xg)
    if h is not None:
        hr, hz, hn = _thirds(h @ w_hh.T if b_hh is None else h @ w_hh.T + b_hh)
    elif b_hh is not None:
        hr, hz, hn = _thirds(b_hh)
    else:
        hr = hz = hn = None
    r = _sigmoid(xr if hr is None else xr + hr)
    z = _sigmoid(xz if hz is None else xz + hz)
    n = np.tanh(xn if hn is None else xn + r * hn)
    return n - z * n if h is None else n + z * (h - n)


def _thirds(a):
    """(..., 3H) -> three (..., H) views."""
    units = a.shape[-1] // 3
    return a[..., :units], a[..., units : 2 * units], a[..., 2 * units :]
''',
    "_sigmoid",
)

helper(
    "_gru",
    '''
def _gru(xg, w_hh, b_hh, h=None):
    """xg (B, T, 3H) = x W_ih^T + b_ih -> h (B, T, H), from h (B, H), or zeros (None)."""
    steps = []
    for t in range(xg.shape[1]):
        h = _gru_step(xg[:, t], h, w_hh, b_hh)
        steps.append(h)
    return np.stack(steps, 1)
''',
    "_gru_step",
)

helper(
    "_lstm_step",
    '''
def _lstm_step(z, c):
    """z (B, 4H), the pre-activations of gates i, f, g, o (PyTorch's order), c (B, H) -> h, c."""
    units = c.shape[-1]
    a = _sigmoid(z)
    i, f, o = a[:, :units], a[:, units : 2 * units], a[:, 3 * units :]
    g = np.tanh(z[:, 2 * units : 3 * units])
    c = i * g + f * c
    return o * np.tanh(c), c
''',
    "_sigmoid",
)

helper(
    "_lstm",
    '''
def _lstm(xg, w_hh, b_hh, h0=None):
    """xg (B, T, 4H) = x W_ih^T + b_ih -> h (B, T, H), from h0 (B, H), or zeros (None), and a
    zero cell."""
    z = np.array(xg.transpose(1, 0, 2), order="C")
    if b_hh is not None:
        z += b_hh
    recurrent = np.ascontiguousarray(w_hh.T)
    h = np.zeros((z.shape[1], w_hh.shape[1]), z.dtype) if h0 is None else h0
    c, steps = np.zeros_like(h), []
    for t in range(z.shape[0]):
        h, c = _lstm_step(z[t] + h @ recurrent if t or h0 is not None else z[t], c)
        steps.append(h)
    return np.stack(steps, 1)
''',
    "_lstm_step",
)

helper(
    "_lstm_from",
    '''
def _lstm_from(xg, w_hh, b_hh, state=None):
    """xg (B, T, 4H) = x W_ih^T + b_ih -> (h (B, T, H), the final (h, c)), from state (h, c)
    (B, H) each, an encoder's final state, or zeros (None)."""
    steps = []
    for t in range(xg.shape[1]):
        state = _lstm_cell(xg[:, t], state, w_hh, b_hh)
        steps.append(state[0])
    return np.stack(steps, 1), state
''',
    "_lstm_cell",
)

helper(
    "_lstm_cell",
    '''
def _lstm_cell(xg, state, w_hh, b_hh):
    """One step inside a loop: xg (B, 4H) = x_t W_ih^T + b_ih, state (h, c) or None (zeros)
    -> (h, c)."""
    z = xg + (0.0 if b_hh is None else b_hh)
    if state is not None:
        z += state[0] @ w_hh.T
    c = np.zeros((z.shape[0], w_hh.shape[1]), z.dtype) if state is None else state[1]
    return _lstm_step(z, c)
''',
    "_lstm_step",
)

helper(
    "_lif_step",
    '''
def _lif_step(xg, v, decay, threshold):
    """xg (B, U) = x W^T + b, the membrane v (B, U) or None (zeros) -> spikes, v after reset."""
    v = xg if v is None else v * decay + xg
    spikes = (v >= threshold).astype(v.dtype)
    return spikes, v + spikes * -threshold
''',
)

helper(
    "_lif",
    '''
def _lif(xg, decay, threshold):
    """xg (B, T, U) = x W^T + b -> spikes (B, T, U), from a membrane at zero."""
    v, steps = None, []
    for t in range(xg.shape[1]):
        spikes, v = _lif_step(xg[:, t], v, decay, threshold)
        steps.append(spikes)
    return np.stack(steps, 1)
''',
    "_lif_step",
)

# ---- reservoirs: esn, lsm --------------------------------------------------------------------
helper(
    "_esn_step",
    '''
def _esn_step(xg, h, W_hh, leak):
    """(1 - leak) h + leak tanh(xg + h W_hh^T): xg (B, U) = x W_ih^T + b, h (B, U) or None."""
    if h is None:
        return leak * np.tanh(xg)
    return (1.0 - leak) * h + leak * np.tanh(xg + h @ W_hh.T)
''',
)

helper(
    "_lsm_step",
    '''
def _lsm_step(xg, state, W_hh, decay, threshold):
    """lif cells fed by xg (B, U) and the last spikes through W_hh; state (v, spikes) or None."""
    if state is not None:
        xg = xg + state[1] @ W_hh.T
    spikes, v = _lif_step(xg, None if state is None else state[0], decay, threshold)
    return spikes, (v, spikes)
''',
    "_lif_step",
)

helper(
    "_reservoir",
    '''
def _reservoir(step, xg, *settings):
    """xg (B, T, U) -> (B, T, U): `step` (_esn_step or _lsm_step) at every step, from zeros."""
    state, steps = None, []
    for t in range(xg.shape[1]):
        out = step(xg[:, t], state, *settings)
        out, state = out if isinstance(out, tuple) else (out, out)
        steps.append(out)
    return np.stack(steps, 1)
''',
)

# ---- attention, graphs, embeddings --------------------------------------------------------------
helper(
    "_heads",
    '''
def _heads(x, heads):
    """(B, L, D) -> (B, heads, L, D / heads)."""
    batch, length, dim = x.shape
    return x.reshape(batch, length, heads, dim // heads).transpose(0, 2, 1, 3)
''',
)

helper(
    "_attention",
    '''
def _attention(q, k, v, heads, causal):
    """q (B, L, D), k and v (B, S, D), already projected -> (B, L, D): softmax(q k^T / sqrt(d)) v
    per head, item i seeing keys j <= i when `causal`; the heads joined again."""
    q, k, v = _heads(q, heads), _heads(k, heads), _heads(v, heads)
    scores = (q @ k.transpose(0, 1, 3, 2)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        length, keys = scores.shape[-2:]
        later = np.arange(keys)[None, :] > np.arange(length)[:, None]
        scores = scores + np.where(later, -np.inf, 0.0).astype(scores.dtype)
    mixed = _softmax(scores) @ v
    batch, _, length, width = mixed.shape
    return mixed.transpose(0, 2, 1, 3).reshape(batch, length, heads * width)
''',
    "_heads",
    "_softmax",
)

helper(
    "_gcn_adjacency",
    '''
def _gcn_adjacency(adjacency):
    """A (..., N, N) -> D^-1/2 (A + I) D^-1/2, D the degrees of A + I."""
    nodes = adjacency.shape[-1]
    looped = adjacency + np.eye(nodes, dtype=adjacency.dtype)
    inv_sqrt = looped.sum(axis=-1) ** -0.5
    rows = inv_sqrt.reshape(inv_sqrt.shape + (1,))
    cols = inv_sqrt.reshape(inv_sqrt.shape[:-1] + (1, nodes))
    return rows * looped * cols
''',
)

helper(
    "_som",
    '''
def _som(x, w):
    """x (..., d), the map's weight w (units, d) -> (..., units): a 1 at the unit nearest x
    (Euclidean, the first at a tie), 0 elsewhere; in slices of examples to bound the memory."""
    flat = x.reshape(-1, x.shape[-1])
    rows = max(1, (1 << 22) // w.size)
    winners = [
        np.square(flat[i : i + rows, None, :] - w).sum(-1).argmin(-1)
        for i in range(0, len(flat), rows)
    ]
    winners = np.concatenate(winners or [np.zeros(0, np.int64)])
    return np.eye(len(w), dtype=w.dtype)[winners].reshape(x.shape[:-1] + (len(w),))
''',
)

helper(
    "_hopfield",
    '''
def _hopfield(cue, weight, update, sweeps, threshold):
    """cue (..., N), weight (N, N) -> the recalled state (..., N) of +1/-1: the cue read as +1
    where positive, then at most `sweeps` sweeps (async: units in order, each seeing the newest
    states; sync: all at once), a unit +1 above the threshold, -1 below, kept at a tie (within
    1e-6 of its row's absolute weight), stopping at a fixed point; in float64."""
    w = weight.astype(np.float64)
    s = np.where(cue > 0, 1.0, -1.0)
    tie = 1e-6 * np.abs(w).sum(1)
    for _ in range(sweeps):
        before = s.copy()
        if update == "sync":
            net = s @ w.T - threshold
            s = np.where(net > tie, 1.0, np.where(net < -tie, -1.0, s))
        else:
            for i in range(w.shape[0]):
                net = s @ w[i] - threshold
                s[..., i] = np.where(net > tie[i], 1.0, np.where(net < -tie[i], -1.0, s[..., i]))
        if np.array_equal(s, before):
            break
    return s.astype(cue.dtype)
''',
)

helper(
    "_chain_rows",
    '''
def _chain_rows(P, numbers, name):
    """state numbers (..., 1), whole numbers below len(P) -> the rows P[number] (..., states)."""
    states = numbers[..., 0].astype(np.int64)
    bad = (states != numbers[..., 0]) | (states < 0) | (states >= len(P))
    if np.any(bad):
        raise ValueError(
            f"markov {name!r} takes state numbers from 0 to {len(P) - 1}, "
            f"but receives {float(numbers[..., 0][bad].flat[0]):g}"
        )
    return P[states]
''',
)

helper(
    "_boltzmann",
    '''
def _boltzmann(v, weight, bias, visible, hidden, groups):
    """A Boltzmann machine's visible bits v (B, visible) -> P(v_i = 1 given v_-i) (B, visible), in
    float64, the hidden units summed out over their 2^hidden states. The energy reads W's
    symmetric part, 0 on the diagonal and between visible units of different groups."""
    n = visible + hidden
    group = np.concatenate([np.arange(visible) // (visible // groups), np.full(hidden, -1)])
    apart = (group[:, None] != group[None, :]) & (group[:, None] >= 0) & (group[None, :] >= 0)
    w = weight.astype(np.float64)
    w = np.where(~np.eye(n, dtype=bool) & ~apart, 0.5 * (w + w.T), 0.0)
    b, x = bias.astype(np.float64), v.astype(np.float64)
    codes = np.arange(2**hidden)[:, None] >> np.arange(hidden - 1, -1, -1)[None, :]
    s = (codes & 1).astype(np.float64)
    hv = w[visible:, :visible].T
    q = 0.5 * ((s @ w[visible:, visible:]) * s).sum(1) + s @ b[visible:]
    c0 = (x @ hv)[:, None, :] - x[:, :, None] * hv[None]
    gap = np.logaddexp.reduce((c0 + hv) @ s.T + q, axis=-1)
    gap = gap - np.logaddexp.reduce(c0 @ s.T + q, axis=-1)
    logits = x @ w[:visible, :visible] + b[:visible] + gap
    return (1.0 / (1.0 + np.exp(-logits))).astype(v.dtype)
''',
)

helper(
    "_rbf",
    '''
def _rbf(x, c, eps):
    """x (..., d), centres c (units, d), eps (units) -> exp(-(eps_j ||x - c_j||)^2) (..., units)."""
    flat = x.reshape(-1, x.shape[-1])
    d2 = (flat * flat).sum(1)[:, None] - 2.0 * (flat @ c.T) + (c * c).sum(1)[None, :]
    phi = np.exp(-np.maximum(d2, 0.0) * (eps * eps))
    return phi.reshape(x.shape[:-1] + (len(c),))
''',
)

helper(
    "_embedding",
    '''
def _embedding(w, tokens, name):
    """tokens (..., k) of whole numbers below len(w) -> (..., k, dim); (..., dim) when k = 1."""
    idx = tokens.astype(np.int64)
    bad = (idx != tokens) | (idx < 0) | (idx >= len(w))
    if np.any(bad):
        raise ValueError(
            f"embedding {name!r} takes whole numbers from 0 to {len(w) - 1}, "
            f"but receives {tokens[bad].flat[0]!r}"
        )
    return w[idx[..., 0] if idx.shape[-1] == 1 else idx]
''',
)


# ---- weights -----------------------------------------------------------------------------------
helper(
    "_tensor",
    '''
def _tensor(path, name, entry, body):
    """One tensor of a safetensors file: `entry` says its dtype, shape and bytes in `body`."""
    try:
        dtype = np.dtype(TENSOR_TYPES[entry["dtype"]])
        shape = tuple(int(n) for n in entry["shape"])
        start, end = (int(n) for n in entry["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: tensor {name!r} lacks a known dtype, shape or offsets") from None
    size = math.prod(shape) * dtype.itemsize
    if min(shape, default=0) < 0 or not 0 <= start <= end <= len(body) or end - start != size:
        raise ValueError(f"{path}: tensor {name!r} does not fit its bytes in the file")
    return np.frombuffer(body[start:end], dtype).reshape(shape)
''',
)

helper(
    "read_safetensors",
    '''
HEADER_LIMIT = 100 * 2**20  # bytes: a safetensors header past this is refused, not read
TENSOR_TYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path):
    """Every tensor of a safetensors file by name: an 8-byte little-endian header size, a JSON
    header (name -> dtype, shape, data_offsets), then the tensors' little-endian bytes."""
    with open(path, "rb") as file:
        data = file.read()
    (size,) = struct.unpack("<Q", data[:8]) if len(data) >= 8 else (-1,)
    if not 0 <= size <= min(HEADER_LIMIT, len(data) - 8):
        raise ValueError(f"{path} is not a safetensors file: no header of a sensible size")
    try:
        header = json.loads(data[8 : 8 + size])
    except (ValueError, RecursionError):
        raise ValueError(f"{path} is not a safetensors file: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header is not a JSON object")
    body = memoryview(data)[8 + size :]
    return {
        name: _tensor(path, name, entry, body)
        for name, entry in header.items()
        if name != "__metadata__"
    }
''',
    "_tensor",
)


# ---- capsules (nnspec/kinds/capsules.py) -------------------------------------------------------
helper(
    "_squash",
    '''
def _squash(s):
    """s (..., dim) -> the same direction, length |s|^2 / (1 + |s|^2)."""
    n = (s * s).sum(axis=-1, keepdims=True)
    return s * (n / ((1 + n) * np.sqrt(n + 1e-09)))
''',
)

helper(
    "_primary_capsules",
    '''
def _primary_capsules(y, capsules, dim):
    """A convolution's output (B, capsules * dim, H, W) -> (B, capsules * H * W, dim), squashed:
    channel k * dim + d is component d of capsule type k; capsules in [k, h, w] order."""
    batch, _, height, width = y.shape
    y = y.reshape(batch, capsules, dim, height, width).transpose(0, 1, 3, 4, 2)
    return _squash(y.reshape(batch, -1, dim))
''',
    "_squash",
)

helper(
    "_capsule_routing",
    '''
def _capsule_routing(u, w, iterations):
    """u (B, N, D), w (N, J, K, D) -> v (B, J, K): predictions u_hat_ij = w_ij u_i, then routing
    by agreement (Sabour, Frosst and Hinton 2017): c = softmax_j(b), s_j = sum_i c_ij u_hat_ij,
    v_j = squash(s_j), b_ij += u_hat_ij . v_j between iterations (b = 0 at first)."""
    u_hat = np.einsum("bnd,njkd->bnjk", u, w, optimize=True)
    logits = np.zeros(u_hat.shape[:-1], u_hat.dtype)
    for iteration in range(iterations):
        e = np.exp(logits - logits.max(axis=-1, keepdims=True))
        c = e / e.sum(axis=-1, keepdims=True)
        v = _squash((c[..., None] * u_hat).sum(axis=-3))
        if iteration < iterations - 1:
            logits = logits + (u_hat * v[:, None]).sum(axis=-1)
    return v
''',
    "_squash",
)

helper(
    "_capsule_mask",
    '''
def _capsule_mask(v):
    """v (B, N, dim) -> (B, N * dim): the longest capsule of each example kept, the others zero."""
    kept = np.arange(v.shape[-2]) == (v * v).sum(axis=-1).argmax(axis=-1)[:, None]
    return (v * kept[..., None]).reshape(v.shape[0], -1)
''',
)

# ---- memory (nnspec/kinds/memory.py: the ntm) --------------------------------------------------
helper(
    "_content",
    '''
def _content(memory, key, strength):
    """Content addressing: softmax(strength cos(key, M_i)) over the slots, key (B, H, W),
    strength (B, H, 1) -> (B, H, N)."""
    norms = np.sqrt((key * key).sum(-1))[:, :, None] * np.sqrt((memory * memory).sum(-1))[:, None]
    return _softmax(strength * ((key @ memory.transpose(0, 2, 1)) / (norms + 1e-8)))
''',
    "_softmax",
)

helper(
    "_ntm_address",
    '''
def _ntm_address(memory, w_prev, head, width):
    """Each head's weighting (B, H, N) from its outputs (B, H, width + 6): content (the key's
    cosine similarity with every slot times softplus(beta), a softmax), interpolation with the
    last weighting by sigmoid(gate), a circular shift by softmax(shifts) over -1, 0, +1, then
    sharpening by 1 + softplus(gamma)."""
    key, beta, gate = head[..., :width], head[..., width : width + 1], head[..., width + 1]
    shift, gamma = _softmax(head[..., width + 2 : width + 5]), head[..., width + 5 :]
    gate = gate[..., None]
    w = _content(memory, key, _softplus(beta))
    w = w_prev + _sigmoid(gate) * (w - w_prev)
    ahead, behind = np.roll(w, -1, -1), np.roll(w, 1, -1)  # w[i + 1], w[i - 1]
    w = shift[..., :1] * ahead + shift[..., 1:2] * w + shift[..., 2:] * behind
    w = (w / w.max(-1, keepdims=True)) ** (_softplus(gamma) + 1.0)
    return w / w.sum(-1, keepdims=True)
''',
    "_content",
    "_softmax",
    "_softplus",
    "_sigmoid",
)

helper(
    "_ntm_step",
    '''
def _ntm_step(x, state, heads, width, slots, *p):
    """One step of a neural Turing machine: x (B, F), the state before it (None at the start:
    the memory at 1e-6, every weighting on slot 0, nothing read) -> (out (B, C + heads * width):
    the controller's h and the vectors read, the state after it). The LSTM controller reads x and
    the vectors read at the step before; the write heads address and write (erase, then add, head
    after head); the read heads address the written memory and read. `p`: the layer's weights
    weight_ih, weight_hh, bias_ih, bias_hh, write_weight, write_bias, read_weight, read_bias."""
    w_ih, w_hh, b_ih, b_hh, write_w, write_b, read_w, read_b = p
    batch, rows = x.shape[0], width + 6
    if state is None:
        w = np.zeros((batch, heads, slots), x.dtype)
        w[:, :, 0] = 1.0
        memory = np.full((batch, slots, width), 1e-6, x.dtype)
        c = np.zeros((batch, w_hh.shape[1]), x.dtype)
        state = (None, c, memory, w, w, np.zeros((batch, heads * width), x.dtype))
    h, c, memory, w_read, w_write, read = state
    z = np.concatenate([x, read], -1) @ w_ih.T + b_ih + b_hh
    if h is not None:
        z += h @ w_hh.T
    h, c = _lstm_step(z, c)
    writes = (h @ write_w.T + write_b).reshape(batch, heads, -1)
    w_write = _ntm_address(memory, w_write, writes[..., :rows], width)
    erase, add = _sigmoid(writes[..., rows : rows + width]), writes[..., rows + width :]
    for k in range(heads):
        w = w_write[:, k, :, None]
        memory = memory * (1.0 - w * erase[:, k, None, :]) + w * add[:, k, None, :]
    reads = (h @ read_w.T + read_b).reshape(batch, heads, -1)
    w_read = _ntm_address(memory, w_read, reads, width)
    read = (w_read @ memory).reshape(batch, heads * width)
    return np.concatenate([h, read], -1), (h, c, memory, w_read, w_write, read)
''',
    "_lstm_step",
    "_ntm_address",
    "_sigmoid",
)

helper(
    "_ntm",
    '''
def _ntm(x, heads, width, slots, *p):
    """x (B, T, F) -> (B, T, C + heads * width): `_ntm_step` through time."""
    state, steps = None, []
    for t in range(x.shape[1]):
        out, state = _ntm_step(x[:, t], state, heads, width, slots, *p)
        steps.append(out)
    return np.stack(steps, 1)
''',
    "_ntm_step",
)

# ---- memory with allocation and links (nnspec/kinds/dnc.py: the dnc) ---------------------------
helper(
    "_dnc_allocation",
    '''
def _dnc_allocation(u):
    """a[phi_j] = (1 - u[phi_j]) prod_{i<j} u[phi_i], phi the slots by usage, ascending (the
    lower slot first at a tie): (B, N) -> (B, N)."""
    order = np.argsort(u, -1, kind="stable")
    su = np.take_along_axis(u, order, -1)
    before = np.cumprod(np.concatenate([np.ones_like(su[:, :1]), su[:, :-1]], -1), -1)
    out = np.empty_like(su)
    np.put_along_axis(out, order, (1.0 - su) * before, -1)
    return out
''',
)

helper(
    "_dnc_step",
    '''
def _dnc_step(x, state, heads, width, slots, *p):
    """One step of a differentiable neural computer: x (B, F), the state before it (None at the
    start: the memory at 1e-6, the usage, weightings, precedence, links and vectors read at zeros)
    -> (out (B, C + heads * width): the controller's h and the vectors read, the state after it).
    The LSTM controller reads x and the vectors read at the step before; the usage is updated by
    the last write and the freed reads; the write goes where allocation and content say, erase
    then add; the links and precedence record the order; each read head mixes the backward,
    content and forward weightings by its modes. `p`: weight_ih, weight_hh, bias_ih, bias_hh,
    read_weight, read_bias, write_weight, write_bias."""
    w_ih, w_hh, b_ih, b_hh, read_w, read_b, write_w, write_b = p
    batch = x.shape[0]
    if state is None:
        zeros = np.zeros((batch, slots), x.dtype)
        c = np.zeros((batch, w_hh.shape[1]), x.dtype)
        memory = np.full((batch, slots, width), 1e-6, x.dtype)
        w_read = np.zeros((batch, heads, slots), x.dtype)
        link = np.zeros((batch, slots, slots), x.dtype)
        read = np.zeros((batch, heads * width), x.dtype)
        state = (None, c, memory, zeros, zeros, w_read, zeros, link, read)
    h, c, memory, u, w_write, w_read, prec, link, read = state
    z = np.concatenate([x, read], -1) @ w_ih.T + b_ih + b_hh
    if h is not None:
        z += h @ w_hh.T
    h, c = _lstm_step(z, c)
    reads = (h @ read_w.T + read_b).reshape(batch, heads, -1)
    r_key, r_beta = reads[..., :width], reads[..., width : width + 1]
    free, modes = _sigmoid(reads[..., width + 1 : width + 2]), _softmax(reads[..., width + 2 :])
    writes = h @ write_w.T + write_b
    w_key, w_beta = writes[:, None, :width], writes[:, None, width : width + 1]
    erase = _sigmoid(writes[:, width + 1 : 2 * width + 1])
    add = writes[:, 2 * width + 1 : 3 * width + 1]
    g_alloc, g_write = _sigmoid(writes[:, -2:-1]), _sigmoid(writes[:, -1:])
    u = (u + w_write - u * w_write) * np.prod(1.0 - free * w_read, 1)
    content = _content(memory, w_key, _softplus(w_beta) + 1.0)[:, 0]
    w_write = g_write * (g_alloc * _dnc_allocation(u) + (1.0 - g_alloc) * content)
    memory = memory * (1.0 - w_write[:, :, None] * erase[:, None, :])
    memory = memory + w_write[:, :, None] * add[:, None, :]
    off = 1.0 - np.eye(slots, dtype=x.dtype)
    kept = 1.0 - w_write[:, :, None] - w_write[:, None, :]
    link = (kept * link + w_write[:, :, None] * prec[:, None, :]) * off
    prec = (1.0 - w_write.sum(-1, keepdims=True)) * prec + w_write
    forward, backward = w_read @ link.transpose(0, 2, 1), w_read @ link
    content = _content(memory, r_key, _softplus(r_beta) + 1.0)
    w_read = modes[..., :1] * backward + modes[..., 1:2] * content + modes[..., 2:] * forward
    read = (w_read @ memory).reshape(batch, heads * width)
    state = (h, c, memory, u, w_write, w_read, prec, link, read)
    return np.concatenate([h, read], -1), state
''',
    "_lstm_step",
    "_content",
    "_dnc_allocation",
    "_sigmoid",
    "_softmax",
    "_softplus",
)

helper(
    "_dnc",
    '''
def _dnc(x, heads, width, slots, *p):
    """x (B, T, F) -> (B, T, C + heads * width): `_dnc_step` through time."""
    state, steps = None, []
    for t in range(x.shape[1]):
        out, state = _dnc_step(x[:, t], state, heads, width, slots, *p)
        steps.append(out)
    return np.stack(steps, 1)
''',
    "_dnc_step",
)
