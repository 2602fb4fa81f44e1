"""The PyTorch side of the pair encoder's speed benchmark: the same architecture as
`rubric_ml::model::PairEncoder` (word, position and token-type embeddings with a LayerNorm;
post-LN transformer layers with attention over explicit scores, GELU (erf) and dropout 0.1; a
tanh pooler over the first token; linear heads for 10 scores and 5 grades), the same loss (the
summed per-head mean squared error of the sigmoid of the score logits plus the cross-entropy of
the grade logits) and the same optimizer (AdamW, no decay on biases and LayerNorms, the gradient
norm clipped to 1.0), timed as `ml/benches/train_speed.rs` times ours. Outside CI.

Run: `python3 benches/teacher_speed.py [SHAPE ...]`, a shape `LAYERSxHIDDEN[hHEADS]` as in the
Rust bench; the same environment variables (SHAPES, STEPS, WARMUP, BATCH, SEQ, VOCAB,
RAYON_NUM_THREADS). `TORCH_SDPA=1` uses `scaled_dot_product_attention` instead of the explicit
scores (not our architecture's computation, for reference). Each shape prints one line:
`pytorch shape=6x384 batch=32 seq=128 train_pairs_per_s=... forward_pairs_per_s=... heads=12`.
"""

import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

SCORES = 10
GRADES = 5
LR = 1e-4
CLIP_NORM = 1.0
WEIGHT_DECAY = 0.01
DROPOUT = 0.1
EPS = 1e-12
DEFAULT_SHAPES = "6x384h12 4x256h4 2x128h4"


def parse_shape(text):
    """`LAYERSxHIDDEN` or `LAYERSxHIDDENhHEADS` -> (layers, hidden, heads)."""
    try:
        layers, rest = text.split("x", 1)
        if "h" in rest:
            hidden, heads = rest.split("h", 1)
            heads = int(heads)
        else:
            hidden, heads = rest, None
        layers, hidden = int(layers), int(hidden)
    except ValueError:
        sys.exit(f"shape {text!r} is not LAYERSxHIDDEN[hHEADS], say 6x384h12")
    return layers, hidden, heads if heads is not None else max(hidden // 64, 4)


def env_int(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"{name}={value!r} is not a number")


class Layer(nn.Module):
    """One post-LN transformer layer, as BERT's and ours."""

    def __init__(self, hidden, heads, intermediate, sdpa):
        super().__init__()
        self.heads, self.head_size, self.sdpa = heads, hidden // heads, sdpa
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_output = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=EPS)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=EPS)
        self.dropout = nn.Dropout(DROPOUT)

    def split(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_size).transpose(1, 2)

    def forward(self, x, mask):
        b, t, h = x.shape
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        if self.sdpa:
            p = DROPOUT if self.training else 0.0
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        else:
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_size) + mask
            probs = self.dropout(torch.softmax(scores, dim=-1))
            context = probs @ v
        context = context.transpose(1, 2).reshape(b, t, h)
        x = self.attention_norm(self.dropout(self.attention_output(context)) + x)
        hidden = F.gelu(self.intermediate(x))
        return self.output_norm(self.dropout(self.output(hidden)) + x)


class PairEncoder(nn.Module):
    def __init__(self, vocab, seq, layers, hidden, heads, sdpa):
        super().__init__()
        self.words = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(seq, hidden)
        self.types = nn.Embedding(2, hidden)
        self.norm = nn.LayerNorm(hidden, eps=EPS)
        self.layers = nn.ModuleList(
            Layer(hidden, heads, 4 * hidden, sdpa) for _ in range(layers)
        )
        self.pooler = nn.Linear(hidden, hidden)
        self.scores = nn.Linear(hidden, SCORES)
        self.grades = nn.Linear(hidden, GRADES)
        self.dropout = nn.Dropout(DROPOUT)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, ids, types, mask):
        b, t = ids.shape
        positions = torch.arange(t, device=ids.device)
        x = self.words(ids) + self.positions(positions) + self.types(types)
        x = self.dropout(self.norm(x))
        # 0 where attended, -1e4 at padding, broadcast over heads and queries.
        mask = ((1.0 - mask.to(x.dtype)) * -1e4).view(b, 1, 1, t)
        for layer in self.layers:
            x = layer(x, mask)
        pooled = self.dropout(torch.tanh(self.pooler(x[:, 0])))
        return self.scores(pooled), self.grades(pooled)


def loss_of(score_logits, grade_logits, scores, grades):
    mse = ((torch.sigmoid(score_logits) - scores) ** 2).mean(0).sum()
    return mse + F.cross_entropy(grade_logits, grades)


def measure(shape, steps, warmup, batch, seq, vocab, sdpa):
    layers, hidden, heads = shape
    torch.manual_seed(0)
    model = PairEncoder(vocab, seq, layers, hidden, heads, sdpa)
    decay = [p for n, p in model.named_parameters() if not (n.endswith(".bias") or "norm" in n)]
    rest = [p for n, p in model.named_parameters() if n.endswith(".bias") or "norm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
        lr=LR,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    types = (torch.arange(seq) >= seq // 2).long().expand(batch, seq).contiguous()
    mask = torch.ones(batch, seq, dtype=torch.long)
    scores = torch.rand(batch, SCORES, generator=g)
    grades = torch.randint(0, GRADES, (batch,), generator=g)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        s, gr = model(ids, types, mask)
        loss = loss_of(s, gr, scores, grades)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        return loss.item()

    model.train()
    for _ in range(warmup):
        train_step()
    start = time.perf_counter()
    for _ in range(steps):
        last = train_step()
    train_s = time.perf_counter() - start
    if not math.isfinite(last):
        sys.exit(f"the loss is {last}")

    model.eval()
    with torch.no_grad():
        for _ in range(warmup):
            model(ids, types, mask)[0].sum().item()
        start = time.perf_counter()
        for _ in range(steps):
            model(ids, types, mask)[0].sum().item()
        forward_s = time.perf_counter() - start
    pairs = batch * steps
    return pairs / train_s, pairs / forward_s


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    text = " ".join(args) or os.environ.get("SHAPES", "").strip() or DEFAULT_SHAPES
    shapes = [parse_shape(s) for s in text.replace(",", " ").split()]
    steps = max(env_int("STEPS", 10), 1)
    warmup = env_int("WARMUP", 2)
    batch = max(env_int("BATCH", 32), 1)
    seq = max(env_int("SEQ", 128), 1)
    vocab = max(env_int("VOCAB", 8192), 1)
    sdpa = os.environ.get("TORCH_SDPA", "") == "1"
    threads = env_int("RAYON_NUM_THREADS", 0) or os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(
        f"pytorch threads={torch.get_num_threads()} (RAYON_NUM_THREADS="
        f"{os.environ.get('RAYON_NUM_THREADS', 'unset')}) steps={steps} warmup={warmup} "
        f"torch={torch.__version__} attention={'sdpa' if sdpa else 'explicit'}",
        flush=True,
    )
    for layers, hidden, heads in shapes:
        train, forward = measure((layers, hidden, heads), steps, warmup, batch, seq, vocab, sdpa)
        print(
            f"pytorch shape={layers}x{hidden} batch={batch} seq={seq} "
            f"train_pairs_per_s={train:.2f} forward_pairs_per_s={forward:.2f} heads={heads}",
            flush=True,
        )


if __name__ == "__main__":
    main()
