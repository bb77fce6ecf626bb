"""PyTorch twin of CrossAttentionAVTransformer (Tran & Soleymani, ICASSP 2022), written from docs/model.md.

It is the reference the C engine is tested against, so it follows the spec's numerics to the letter:
  * internal layout time-first (T, B, .); model API batch-first (B, T, .);
  * pre-LN encoder layers; fused in_proj (rows [0,D) q, [D,2D) k, [2D,3D) v); q scaled by head_dim^-0.5 AFTER the
    bias; causal mask triu(-inf, 1 + |Tk - Tq|) in all three encoders; softmax in fp32;
  * encoder input step sqrt(D) * x_in + PE(x_in), PE row p = [sin(p w_k) ..., cos(p w_k) ...] (fp32), p = t + 1, or
    p = 0 (zero row) where channel 0 of x_in is exactly 0.0; applied to q, k and v inputs of the cross encoders;
  * INDEPENDENT embed dropout masks for x, x_k, x_v and separate LN0 calls; final LayerNorm per encoder;
  * fusion concat([v_cross_a, a_cross_v]) -> trans_mem; pretraining heads; extract_feature.

Dropout never uses torch's RNG: every dropout multiplies by philox.dropout_scale(seed, site, step, p, shape) with
the shape in the canonical BATCH-FIRST layout (activations (B, T, C), attention weights (B, NH, Tq, Tk)) and
site = (enc << 16) | (layer << 8) | k:
    enc   0 acoustic_cross_visual, 1 visual_cross_acoustic, 2 trans_mem
    layer 0xFF = encoder input (p 0.25) with k 0 = x, 1 = x_k, 2 = x_v
    layer i:  k 0 attention weights (p 0 cross / 0.1 trans_mem), 1 residual after attention (0.1),
              2 ReLU inside the FFN (0.1), 3 residual after fc2 (0.1)
p == 0 or eval mode: identity, nothing drawn. Heads: dropout 0 (identity).
For benchmarks only, `model.dropout_impl = "torch"` swaps in F.dropout with the same probabilities.

Run `python3 tests/reference/avt_ref.py` for the self-tests (parameter counts, causality).
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import philox  # noqa: E402

ENC_IDS = {"acoustic_cross_visual": 0, "visual_cross_acoustic": 1, "trans_mem": 2}
LAYER_INPUT = 0xFF

P_EMBED = 0.25
P_ATTN_CROSS = 0.0
P_ATTN_MEM = 0.1
P_RELU = 0.1
P_RES = 0.1
P_OUT = 0.0

CONFIGS = {
    "tiny": dict(embed_size=24, n_code=2, n_heads=4),
    "base": dict(embed_size=240, n_code=4, n_heads=10),
    "large": dict(embed_size=384, n_code=8, n_heads=12),
}
PARAM_COUNTS = {"base": 18407329, "large": 89250961}


def site_id(enc, layer, k):
    return ((enc & 0xFFFF) << 16) | ((layer & 0xFF) << 8) | (k & 0xFF)


class DropCtx:
    """What a dropout call needs besides p and site: training flag, seed, step, implementation."""

    def __init__(self, training, seed, step, impl="philox"):
        self.training = training
        self.seed = int(seed)
        self.step = int(step)
        self.impl = impl

    def apply(self, x, p, site, canon_shape, to_internal=None):
        """x in internal layout; canon_shape is the batch-first shape the mask is drawn in; to_internal maps the
        canonical mask tensor to x's layout (None: same layout)."""
        if not self.training or p <= 0.0:
            return x
        if self.impl == "torch":
            return F.dropout(x, p=p, training=True)
        m = torch.from_numpy(philox.dropout_scale(self.seed, site, self.step, p, canon_shape)).to(x.device)
        if to_internal is not None:
            m = to_internal(m)
        return x * m


def drop_tbc(ctx, x, p, site):
    """Dropout of a time-first activation (T, B, C); mask drawn batch-first (B, T, C)."""
    T, B, C = x.shape
    return ctx.apply(x, p, site, (B, T, C), lambda m: m.permute(1, 0, 2))


def sinusoid_table(num_pos, dim):
    """(num_pos, dim) fp32 table; row p = [sin(p w_0..w_{h-1}), cos(p w_0..w_{h-1})], w_k = exp(-k ln(1e4)/(h-1)).
    Row 0 is zeroed (padding position). Odd dim gets a trailing zero column."""
    half = dim // 2
    step = math.log(10000) / (half - 1)
    w = torch.exp(torch.arange(half, dtype=torch.float32) * -step)
    ang = torch.arange(num_pos, dtype=torch.float32).unsqueeze(1) * w.unsqueeze(0)
    pe = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if dim % 2 == 1:
        pe = torch.cat([pe, torch.zeros(num_pos, 1)], dim=1)
    pe[0, :] = 0
    return pe


class SinusoidalPositionalEmbedding(nn.Module):
    """Positions from channel 0 of the (B, T, C) input: 0 where it is exactly 0.0, else t + 1. Returns (B, T, dim)."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.register_buffer("_float_tensor", torch.zeros(1))

    def forward(self, first_channel):  # (B, T)
        B, T = first_channel.shape
        table = sinusoid_table(T + 1, self.dim).to(first_channel.device)
        pos = torch.arange(1, T + 1, device=first_channel.device).unsqueeze(0).expand(B, T)
        pos = torch.where(first_channel == 0.0, torch.zeros_like(pos), pos)
        return table[pos].detach()


class MultiheadAttention(nn.Module):
    def __init__(self, dim, n_heads):
        super().__init__()
        assert dim % n_heads == 0
        self.dim = dim
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.scaling = self.head_dim ** -0.5
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim, bias=True)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.constant_(self.in_proj_bias, 0.0)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.constant_(self.out_proj.bias, 0.0)

    def forward(self, q_in, k_in, v_in, attn_mask, ctx, p_attn, site):
        """q_in (Tq, B, D), k_in / v_in (Tk, B, D); attn_mask (Tq, Tk) additive. Returns (Tq, B, D)."""
        Tq, B, D = q_in.shape
        Tk = k_in.shape[0]
        NH, HD = self.n_heads, self.head_dim
        W, b = self.in_proj_weight, self.in_proj_bias
        q = F.linear(q_in, W[:D], b[:D])
        k = F.linear(k_in, W[D:2 * D], b[D:2 * D])
        v = F.linear(v_in, W[2 * D:], b[2 * D:])
        q = q * self.scaling
        # (T, B, D) -> (B*NH, T, HD); row index b*NH + h
        q = q.contiguous().view(Tq, B * NH, HD).transpose(0, 1)
        k = k.contiguous().view(Tk, B * NH, HD).transpose(0, 1)
        v = v.contiguous().view(Tk, B * NH, HD).transpose(0, 1)
        w = torch.bmm(q, k.transpose(1, 2))
        if attn_mask is not None:
            w = w + attn_mask.unsqueeze(0)
        w = F.softmax(w.float(), dim=-1).type_as(w)
        w = ctx.apply(w, p_attn, site, (B, NH, Tq, Tk), lambda m: m.reshape(B * NH, Tq, Tk))
        o = torch.bmm(w, v)  # (B*NH, Tq, HD)
        o = o.transpose(0, 1).contiguous().view(Tq, B, D)
        return self.out_proj(o)


class TransformerEncoderLayer(nn.Module):
    def __init__(self, dim, n_heads, p_attn):
        super().__init__()
        self.self_attn = MultiheadAttention(dim, n_heads)
        self.p_attn = p_attn
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.constant_(fc.bias, 0.0)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(dim, eps=1e-5) for _ in range(2)])

    def forward(self, x, x_k, x_v, attn_mask, ctx, enc, li):
        r = x
        x = self.layer_norms[0](x)
        if x_k is None:
            k = v = x
        else:
            k = self.layer_norms[0](x_k)
            v = self.layer_norms[0](x_v)
        x = self.self_attn(x, k, v, attn_mask, ctx, self.p_attn, site_id(enc, li, 0))
        x = drop_tbc(ctx, x, P_RES, site_id(enc, li, 1))
        x = r + x
        r = x
        x = self.layer_norms[1](x)
        x = F.relu(self.fc1(x))
        x = drop_tbc(ctx, x, P_RELU, site_id(enc, li, 2))
        x = self.fc2(x)
        x = drop_tbc(ctx, x, P_RES, site_id(enc, li, 3))
        return r + x


def future_mask(Tq, Tk, device=None):
    return torch.triu(torch.full((Tq, Tk), float("-inf"), device=device), 1 + abs(Tk - Tq))


class TransformerEncoder(nn.Module):
    def __init__(self, dim, n_heads, n_layers, p_attn, enc_id):
        super().__init__()
        self.dim = dim
        self.enc_id = enc_id
        self.embed_scale = math.sqrt(dim)
        self.embed_positions = SinusoidalPositionalEmbedding(dim)
        self.layers = nn.ModuleList([TransformerEncoderLayer(dim, n_heads, p_attn) for _ in range(n_layers)])
        self.register_buffer("version", torch.tensor([2.0]))
        self.layer_norm = nn.LayerNorm(dim, eps=1e-5)

    def embed(self, x_in, ctx, k):
        """x_in (T, B, D) -> dropout(sqrt(D) x_in + PE(x_in), 0.25) with site (enc, 0xFF, k)."""
        x = self.embed_scale * x_in
        x = x + self.embed_positions(x_in.transpose(0, 1)[:, :, 0]).transpose(0, 1)
        return drop_tbc(ctx, x, P_EMBED, site_id(self.enc_id, LAYER_INPUT, k))

    def forward(self, x_in, x_in_k=None, x_in_v=None, ctx=None):
        x = self.embed(x_in, ctx, 0)
        x_k = x_v = None
        if x_in_k is not None:
            x_k = self.embed(x_in_k, ctx, 1)
            x_v = self.embed(x_in_v, ctx, 2)
        Tq = x.shape[0]
        Tk = x_k.shape[0] if x_k is not None else Tq
        mask = future_mask(Tq, Tk, x.device)
        for i, layer in enumerate(self.layers):
            x = layer(x, x_k, x_v, mask, ctx, self.enc_id, i)
        return self.layer_norm(x)


class CrossAttentionAVTransformer(nn.Module):
    def __init__(self, orig_d_a=512, orig_d_v=17, embed_size=240, n_code=4, n_heads=10):
        super().__init__()
        d = embed_size
        self.orig_d_a, self.orig_d_v, self.d = orig_d_a, orig_d_v, d
        self.n_code, self.n_heads = n_code, n_heads
        self.dropout_impl = "philox"  # "torch" for benchmarks only
        self.proj_a = nn.Conv1d(orig_d_a, d, kernel_size=1, bias=False)
        self.proj_v = nn.Conv1d(orig_d_v, d, kernel_size=1, bias=False)
        self.acoustic_cross_visual = TransformerEncoder(d, n_heads, n_code, P_ATTN_CROSS, 0)
        self.visual_cross_acoustic = TransformerEncoder(d, n_heads, n_code, P_ATTN_CROSS, 1)
        self.trans_mem = TransformerEncoder(2 * d, n_heads, n_code, P_ATTN_MEM, 2)
        self.proj1 = nn.Linear(2 * d, 2 * d)  # unused, kept for the state dict
        self.proj2 = nn.Linear(2 * d, 2 * d)  # unused
        self.proj1_a = nn.Linear(2 * d, 2 * d)
        self.proj2_a = nn.Linear(2 * d, 2 * d)
        self.proj1_v = nn.Linear(2 * d, 2 * d)
        self.proj2_v = nn.Linear(2 * d, 2 * d)
        self.out_layer_a = nn.Linear(2 * d, orig_d_a)
        self.out_layer_v = nn.Linear(2 * d, orig_d_v)

    def _ctx(self, seed, step):
        return DropCtx(self.training, seed, step, self.dropout_impl)

    def _fused(self, x_a, x_v, ctx):
        """x_a (B, T, 512), x_v (B, T, 17) -> h_av (T, B, 2d) after trans_mem's final LayerNorm."""
        assert x_a.shape[1] == x_v.shape[1], "T_a must equal T_v"
        pa = self.proj_a(x_a.transpose(1, 2)).permute(2, 0, 1)  # (T, B, d)
        pv = self.proj_v(x_v.transpose(1, 2)).permute(2, 0, 1)
        a_cross_v = self.acoustic_cross_visual(pa, pv, pv, ctx)
        v_cross_a = self.visual_cross_acoustic(pv, pa, pa, ctx)
        h = torch.cat([v_cross_a, a_cross_v], dim=2)
        return self.trans_mem(h, ctx=ctx)

    def forward(self, x_a, x_v, seed=0, step=0):
        """Pretraining objective heads. Returns (out_a (B, T, 512), out_v (B, T, 17))."""
        ctx = self._ctx(seed, step)
        h = self._fused(x_a, x_v, ctx).permute(1, 0, 2)  # (B, T, 2d)
        h_a = h + self.proj2_a(ctx.apply(F.relu(self.proj1_a(h)), P_OUT, 0, None))
        h_v = h + self.proj2_v(ctx.apply(F.relu(self.proj1_v(h)), P_OUT, 0, None))
        return self.out_layer_a(h_a), self.out_layer_v(h_v)

    def extract_feature(self, x_a, x_v, seed=0, step=0):
        """Returns (h_av (T, B, 2d) time-first, h_av_last = h_av[-1] (B, 2d))."""
        h = self._fused(x_a, x_v, self._ctx(seed, step))
        return h, h[-1]


def FineTuneHead(d_in, n_out):
    return nn.Sequential(nn.Linear(d_in, 16), nn.ReLU(), nn.Linear(16, n_out))


def n_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def build(cfg, **kw):
    c = dict(CONFIGS[cfg]) if isinstance(cfg, str) else dict(cfg)
    c.update(kw)
    return CrossAttentionAVTransformer(512, 17, c["embed_size"], c["n_code"], c["n_heads"])


def expected_keys(d, L, orig_d_a=512, orig_d_v=17):
    """state_dict keys and shapes per docs/model.md §2.12."""
    keys = {"proj_a.weight": (d, orig_d_a, 1), "proj_v.weight": (d, orig_d_v, 1)}
    for E, D in (("acoustic_cross_visual", d), ("visual_cross_acoustic", d), ("trans_mem", 2 * d)):
        keys[E + ".version"] = (1,)
        keys[E + ".embed_positions._float_tensor"] = (1,)
        for i in range(L):
            p = "%s.layers.%d." % (E, i)
            keys[p + "self_attn.in_proj_weight"] = (3 * D, D)
            keys[p + "self_attn.in_proj_bias"] = (3 * D,)
            keys[p + "self_attn.out_proj.weight"] = (D, D)
            keys[p + "self_attn.out_proj.bias"] = (D,)
            keys[p + "fc1.weight"] = (4 * D, D)
            keys[p + "fc1.bias"] = (4 * D,)
            keys[p + "fc2.weight"] = (D, 4 * D)
            keys[p + "fc2.bias"] = (D,)
            for j in (0, 1):
                keys[p + "layer_norms.%d.weight" % j] = (D,)
                keys[p + "layer_norms.%d.bias" % j] = (D,)
        keys[E + ".layer_norm.weight"] = (D,)
        keys[E + ".layer_norm.bias"] = (D,)
    for n in ("proj1", "proj2", "proj1_a", "proj2_a", "proj1_v", "proj2_v"):
        keys[n + ".weight"] = (2 * d, 2 * d)
        keys[n + ".bias"] = (2 * d,)
    keys["out_layer_a.weight"] = (orig_d_a, 2 * d)
    keys["out_layer_a.bias"] = (orig_d_a,)
    keys["out_layer_v.weight"] = (orig_d_v, 2 * d)
    keys["out_layer_v.bias"] = (orig_d_v,)
    return keys


def check_state_dict_layout(model):
    sd = model.state_dict()
    want = expected_keys(model.d, model.n_code, model.orig_d_a, model.orig_d_v)
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert got == want, "state_dict layout mismatch: missing %s extra %s shape %s" % (
        sorted(set(want) - set(got)), sorted(set(got) - set(want)),
        sorted(k for k in set(want) & set(got) if want[k] != got[k]))
    for E in ENC_IDS:
        assert float(sd[E + ".version"][0]) == 2.0


def _self_test():
    torch.manual_seed(0)
    for cfg, want in PARAM_COUNTS.items():
        m = build(cfg)
        n = n_trainable(m)
        print("%s: trainable parameters %s" % (cfg, format(n, ",")))
        assert n == want, (cfg, n, want)
        check_state_dict_layout(m)
        del m
    m = build("tiny")
    check_state_dict_layout(m)
    # causality: h_av at step t must not depend on inputs after t (eval and training with a fixed seed/step)
    B, T, t = 2, 9, 4
    x_a = torch.rand(B, T, 512) + 0.1
    x_v = torch.rand(B, T, 17) * 5 + 0.1
    x_a2, x_v2 = x_a.clone(), x_v.clone()
    x_a2[:, t + 1:] = torch.rand(B, T - t - 1, 512) + 0.1
    x_v2[:, t + 1:] = torch.rand(B, T - t - 1, 17) * 5 + 0.1
    for training in (False, True):
        m.train(training)
        with torch.no_grad():
            h1, _ = m.extract_feature(x_a, x_v, 1234, 7)
            h2, _ = m.extract_feature(x_a2, x_v2, 1234, 7)
            o1 = m(x_a, x_v, 1234, 7)[0]
            o2 = m(x_a2, x_v2, 1234, 7)[0]
        e_past = (h1[:t + 1] - h2[:t + 1]).abs().max().item()
        e_fut = (h1[t + 1:] - h2[t + 1:]).abs().max().item()
        e_out = (o1[:, :t + 1] - o2[:, :t + 1]).abs().max().item()
        print("causality (%s): max |dh| steps <= t: %.3g (future steps: %.3g); heads: %.3g" % (
            "train" if training else "eval", e_past, e_fut, e_out))
        assert e_past == 0.0 and e_out == 0.0 and e_fut > 1e-3
    print("avt_ref self-test ok")


if __name__ == "__main__":
    _self_test()
