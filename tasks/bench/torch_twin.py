#!/usr/bin/env python3
"""The PyTorch twin of petal's default recipe's GAN step (issue 18), for `deno task bench`.

The default recipe (`gan-int-cls`, size `small`, tasks/recipe.ts) after its text pre-training:
the text encoder is frozen, so one step takes the batch's sentence vectors (2 x 64 = 128 wide)
as input, as this script does (random vectors; the step's cost does not depend on them).
Op for op as stages/generate.ts, stages/discriminate.ts, stages/losses.ts and
stages/train_step.ts (NCHW here, NHWC there):

- G: conditioning augmentation Linear(128 -> 2*64) + leaky ReLU 0.2 -> (mu, log var);
  c = mu + exp(log var / 2) * eps; Linear(64 + 64 -> 4*4*128, no bias) -> conditional BN
  (BN, then * (1 + c W_s) + c W_b) -> ReLU; then 128 -> 64 -> 32 -> 16 -> 3 channels, each
  nearest x2 up-sampling and a 3x3 conv (no bias); conditional BN + ReLU between; the last
  adds a bias and a colour offset c W_o, then tanh. 64x64 images.
- D: conv 4x4 s2 3 -> 16 (bias) + leaky ReLU; 16 -> 32 -> 64 -> 128 each conv 4x4 s2 (no
  bias) + BN + leaky ReLU; text Linear(128 -> 64) + leaky ReLU tiled 4x4, concat, conv 1x1
  192 -> 128 + BN + leaky ReLU, conv 4x4 valid -> 1 logit (bias).
- D step: fake = G(z, right, eps) without grad; BCE(D(real, right), 1)
  + 1/2 [BCE(D(fake, right), 0) + BCE(D(real, wrong), 0)], the real images' trunk (the
  convolutions before the text joins) computed once for both captions, as petal does: two
  trunk passes, two sets of trunk batch statistics; Adam(5e-4, 0.5, 0.999).
- G step: BCE(D(G(z, right, eps), right), 1) + 0.1 KL + GAN-INT: BCE(D(G(z', e_int, eps'),
  e_int), 1) with e_int = (right + right[partners]) / 2; Adam(5e-4, 0.5, 0.999). D's
  parameters take no gradient here (petal's tape does not compute them either).
- EMA of G: ema = d ema + (1 - d) g over G's parameters (d = 0.999 after warm-up).

usage: torch_twin.py [--batch 32] [--threads 2] [--steps 10] [--warmup 3]
prints one JSON line: {"engine": "torch-...", "step_s": median, "img_per_s": ..., ...}
"""
import argparse, json, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--batch", type=int, default=32); ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--steps", type=int, default=10); ap.add_argument("--warmup", type=int, default=3)
args = ap.parse_args()
torch.set_num_threads(args.threads); torch.manual_seed(0)
B, TEXT, Z, COND, DTEXT = args.batch, 128, 64, 64, 64
GCH, DCH = [128, 64, 32, 16], [16, 32, 64, 128]
LR, BETAS, KL_W, EMA = 5e-4, (0.5, 0.999), 0.1, 0.999


class G(nn.Module):
    def __init__(s):
        super().__init__()
        s.ca = nn.Linear(TEXT, 2 * COND)
        s.fc = nn.Linear(Z + COND, 16 * GCH[0], bias=False)
        outs = GCH[1:] + [3]
        s.up = nn.ModuleList([nn.Conv2d(c, o, 3, 1, 1, bias=False) for c, o in zip(GCH, outs)])
        s.bn = nn.ModuleList([nn.BatchNorm2d(c, momentum=0.1) for c in GCH])  # bn0 .. bn3
        s.cscale = nn.ModuleList([nn.Linear(COND, c, bias=False) for c in GCH])
        s.cshift = nn.ModuleList([nn.Linear(COND, c, bias=False) for c in GCH])
        s.out_b = nn.Parameter(torch.zeros(3)); s.out_cond = nn.Linear(COND, 3, bias=False)

    def cbn(s, i, h, c):
        n = s.bn[i](h)
        return n * (1 + s.cscale[i](c)[:, :, None, None]) + s.cshift[i](c)[:, :, None, None]

    def forward(s, z, e, eps):
        mu, log_var = F.leaky_relu(s.ca(e), 0.2).chunk(2, 1)
        c = mu + torch.exp(0.5 * log_var) * eps
        h = F.relu(s.cbn(0, s.fc(torch.cat([z, c], 1)).view(-1, GCH[0], 4, 4), c))
        for i, conv in enumerate(s.up):
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest"))
            if i + 1 < len(s.up): h = F.relu(s.cbn(i + 1, h, c))
        h = torch.tanh(h + s.out_b[None, :, None, None] + s.out_cond(c)[:, :, None, None])
        kl = (0.5 * (mu.square() + log_var.exp() - (log_var + 1))).sum(1).mean()
        return h, kl


class D(nn.Module):
    def __init__(s):
        super().__init__()
        ch = [3] + DCH
        s.down = nn.ModuleList([nn.Conv2d(ch[i], ch[i + 1], 4, 2, 1, bias=i == 0) for i in range(4)])
        s.bn = nn.ModuleList([nn.BatchNorm2d(c, track_running_stats=False) for c in DCH[1:]])
        s.text = nn.Linear(TEXT, DTEXT)
        s.fuse = nn.Conv2d(DCH[-1] + DTEXT, DCH[-1], 1, bias=False)
        s.bn_fuse = nn.BatchNorm2d(DCH[-1], track_running_stats=False)
        s.out = nn.Conv2d(DCH[-1], 1, 4)

    def features(s, x):
        h = F.leaky_relu(s.down[0](x), 0.2)
        for conv, bn in zip(s.down[1:], s.bn): h = F.leaky_relu(bn(conv(h)), 0.2)
        return h

    def forward(s, x, e):
        return s.judge(s.features(x), e)

    def judge(s, h, e):
        t = F.leaky_relu(s.text(e), 0.2)[:, :, None, None].expand(-1, DTEXT, 4, 4)
        h = F.leaky_relu(s.bn_fuse(s.fuse(torch.cat([h, t], 1))), 0.2)
        return s.out(h).view(-1)


g, d = G(), D()
ema = [p.detach().clone() for p in g.parameters()]
opt_g = torch.optim.Adam(g.parameters(), LR, betas=BETAS)
opt_d = torch.optim.Adam(d.parameters(), LR, betas=BETAS)
bce = F.binary_cross_entropy_with_logits
ones, zeros = torch.ones(B), torch.zeros(B)


def step(t):
    real = torch.rand(B, 3, 64, 64) * 2 - 1
    right, wrong = torch.randn(B, TEXT), torch.randn(B, TEXT)
    z, eps, z_int, eps_int = torch.randn(B, Z), torch.randn(B, COND), torch.randn(B, Z), torch.randn(B, COND)
    partners = torch.randperm(B)
    with torch.no_grad(): fake, _ = g(z, right, eps)
    opt_d.zero_grad(set_to_none=True)
    h_real = d.features(real)
    loss_d = bce(d.judge(h_real, right), ones) + 0.5 * (bce(d(fake, right), zeros) + bce(d.judge(h_real, wrong), zeros))
    loss_d.backward(); opt_d.step()
    d.requires_grad_(False)
    opt_g.zero_grad(set_to_none=True)
    images, kl = g(z, right, eps)
    loss_g = bce(d(images, right), ones) + KL_W * kl
    e_int = 0.5 * right + 0.5 * right[partners]
    loss_g = loss_g + bce(d(g(z_int, e_int, eps_int)[0], e_int), ones)
    loss_g.backward(); opt_g.step()
    d.requires_grad_(True)
    decay = min(EMA, (1 + t) / (10 + t))
    with torch.no_grad():
        for e, p in zip(ema, g.parameters()): e.mul_(decay).add_(p, alpha=1 - decay)
    return float(loss_d), float(loss_g)


times = []
for i in range(args.warmup + args.steps):
    t0 = time.perf_counter(); step(i); dt = time.perf_counter() - t0
    if i >= args.warmup: times.append(dt)
med = statistics.median(times)
print(json.dumps({"engine": f"torch-{torch.__version__}", "threads": torch.get_num_threads(), "batch": B,
                  "step_s": round(med, 5), "img_per_s": round(B / med, 3),
                  "steps_s": [round(t, 5) for t in times]}))
