#!/usr/bin/env python3
"""ONNX Runtime peer for rubric's (int8) student pair encoder.

Builds an ONNX graph for a rubric student folder (config.json, model.safetensors,
rubric.json) straight from the safetensors with onnx.helper (no torch; the last layer's
queries and feed-forward on the first token alone, which the pooler reads, as rubric's
encoder does), checks it
against a pure-numpy forward pass, quantizes it with ORT's dynamic quantization
(int8 weights per output channel, u8 activations per tensor, computed at run time)
and times both models.  See benches/onnx_peer.md.

Needs: onnx, onnxruntime, numpy, safetensors (no torch).

  python benches/onnx_peer.py --model DIR [--out DIR] [--check] [--threads 2]
      [--batches 1,32,100] [--seq 96] [--seconds 3]
      [--inputs pairs.npz --outputs peer_out.npz] [--no-bench]
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

HEAD_NAMES = ("scores", "grades", "click")


# ----------------------------------------------------------------------------- model

def load_student(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    card = {}
    card_path = os.path.join(model_dir, "rubric.json")
    if os.path.exists(card_path):
        with open(card_path) as f:
            card = json.load(f)
    w = load_file(os.path.join(model_dir, "model.safetensors"))
    w = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in w.items()
         if k != "training.position_bias"}
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
        raise SystemExit(f"unsupported hidden_act {act!r} (only exact erf gelu)")
    return cfg, card, w


def layer_heads(cfg, layer):
    """Heads left in `layer` after Hugging Face style pruning."""
    n = cfg["num_attention_heads"]
    pruned = cfg.get("pruned_heads") or {}
    gone = set(pruned.get(str(layer), pruned.get(layer, [])))
    return n - len(gone)


def heads_present(w):
    return [h for h in HEAD_NAMES if f"heads.{h}.weight" in w]


def feature_width(w):
    return w["features.dense.weight"].shape[1] if "features.dense.weight" in w else 0


# ----------------------------------------------------------------------------- numpy reference

def _erf(x):
    # vectorised math.erf in float64 (exact enough for a 1e-4 check)
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _gelu(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _ln(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _lin(x, w, prefix):
    return x @ w[prefix + ".weight"].astype(np.float64).T + w[prefix + ".bias"]


def numpy_forward(cfg, w, ids, types, mask, feats=None):
    """The student's forward pass in float64 numpy; returns {head: logits}."""
    eps = cfg.get("layer_norm_eps", 1e-12)
    H = cfg["hidden_size"]
    hs = H // cfg["num_attention_heads"]
    B, T = ids.shape
    x = (w["embeddings.word_embeddings.weight"][ids].astype(np.float64)
         + w["embeddings.position_embeddings.weight"][:T]
         + w["embeddings.token_type_embeddings.weight"][types])
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    add = (1.0 - mask.astype(np.float64)) * -10000.0  # [B, T]
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        nh = layer_heads(cfg, i)
        if nh > 0:
            def split(t):
                return t.reshape(B, T, nh, hs).transpose(0, 2, 1, 3)
            q = split(_lin(x, w, p + "attention.self.query"))
            k = split(_lin(x, w, p + "attention.self.key"))
            v = split(_lin(x, w, p + "attention.self.value"))
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hs) + add[:, None, None, :]
            s = s - s.max(-1, keepdims=True)
            e = np.exp(s)
            probs = e / e.sum(-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(B, T, nh * hs)
            a = _lin(ctx, w, p + "attention.output.dense")
        else:
            a = np.broadcast_to(w[p + "attention.output.dense.bias"].astype(np.float64), x.shape)
        x = _ln(a + x, w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"], eps)
        h = _gelu(_lin(x, w, p + "intermediate.dense"))
        h = _lin(h, w, p + "output.dense")
        x = _ln(h + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    pooled = np.tanh(_lin(x[:, 0], w, "pooler.dense"))
    if feature_width(w):
        f = _gelu(_lin(feats.astype(np.float64), w, "features.dense"))
        f = _gelu(_lin(f, w, "features.output"))
        pooled = pooled + f
    return {h: _lin(pooled, w, f"heads.{h}") for h in heads_present(w)}


# ----------------------------------------------------------------------------- onnx graph

class G:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs, base=None, **attrs):
        out = self.name(base or op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out + "_node", **attrs))
        return out

    def linear(self, x, w, prefix):
        wt = self.const(prefix + ".weight_t", w[prefix + ".weight"].T.copy())  # [in, out]
        b = self.const(prefix + ".bias", w[prefix + ".bias"])
        return self.op("Add", [self.op("MatMul", [x, wt], prefix + ".matmul"), b], prefix)

    def layer_norm(self, x, w, prefix, eps):
        g = self.const(prefix + ".weight", w[prefix + ".weight"])
        b = self.const(prefix + ".bias", w[prefix + ".bias"])
        return self.op("LayerNormalization", [x, g, b], prefix, axis=-1, epsilon=float(eps))

    def gelu(self, x, opset):
        if opset >= 20:
            return self.op("Gelu", [x], approximate="none")
        # x * 0.5 * (1 + erf(x / sqrt(2))) in the form ORT's GeluFusion recognises
        c = self.const(self.name("sqrt2"), np.array(math.sqrt(2.0), np.float32))
        one = self.const(self.name("one"), np.array(1.0, np.float32))
        half = self.const(self.name("half"), np.array(0.5, np.float32))
        e = self.op("Erf", [self.op("Div", [x, c])])
        return self.op("Mul", [self.op("Mul", [x, self.op("Add", [e, one])]), half], "gelu")


def build_onnx(cfg, w, opset=17):
    eps = cfg.get("layer_norm_eps", 1e-12)
    H = cfg["hidden_size"]
    hs = H // cfg["num_attention_heads"]
    g = G()
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT, ["batch", "seq"]),
    ]
    F = feature_width(w)
    if F:
        inputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", F]))

    # embeddings
    we = g.const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"])
    pe = g.const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"])
    te = g.const("embeddings.token_type_embeddings.weight", w["embeddings.token_type_embeddings.weight"])
    seq_len = g.op("Shape", ["input_ids"], "seq_len", start=1, end=2)  # [T]
    zero1 = g.const("zero_1d", np.array([0], np.int64))
    pos = g.op("Slice", [pe, zero1, seq_len, zero1], "positions")  # [T, H]
    x = g.op("Add", [g.op("Gather", [we, "input_ids"], "word", axis=0),
                     g.op("Gather", [te, "token_type_ids"], "type", axis=0)])
    x = g.op("Add", [x, pos])
    x = g.layer_norm(x, w, "embeddings.LayerNorm", eps)

    # additive mask [B, 1, 1, T]
    one = g.const("one_f", np.array(1.0, np.float32))
    neg = g.const("neg_1e4", np.array(-10000.0, np.float32))
    add_mask = g.op("Mul", [g.op("Sub", [one, "attention_mask"]), neg])
    add_mask = g.op("Unsqueeze", [add_mask, g.const("axes_1_2", np.array([1, 2], np.int64))], "add_mask")
    scale = g.const("inv_sqrt_head", np.array(1.0 / math.sqrt(hs), np.float32))
    perm = [0, 2, 1, 3]

    # The last layer's outputs are read at the first token only (the pooler's), so, as our
    # encoder does, its queries, residual and feed-forward run on that token alone; its keys
    # and values on every token.
    one1 = g.const("one_1d", np.array([1], np.int64))
    last = cfg["num_hidden_layers"] - 1
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        nh = layer_heads(cfg, i)
        xq = g.op("Slice", [x, zero1, one1, one1], p + "first") if i == last else x  # [B, 1, H]
        if nh > 0:
            shp = g.const(p + "split_shape", np.array([0, 0, nh, hs], np.int64))
            cat = g.const(p + "merge_shape", np.array([0, 0, nh * hs], np.int64))

            def split(t, tperm=perm):
                return g.op("Transpose", [g.op("Reshape", [t, shp])], perm=tperm)
            q = split(g.linear(xq, w, p + "attention.self.query"))
            k = split(g.linear(x, w, p + "attention.self.key"), [0, 2, 3, 1])  # [B, nh, hs, T]
            v = split(g.linear(x, w, p + "attention.self.value"))
            s = g.op("Mul", [g.op("MatMul", [q, k], p + "qk"), scale])
            s = g.op("Add", [s, add_mask])
            probs = g.op("Softmax", [s], p + "probs", axis=-1)
            ctx = g.op("Transpose", [g.op("MatMul", [probs, v], p + "ctx")], perm=perm)
            ctx = g.op("Reshape", [ctx, cat])
            a = g.linear(ctx, w, p + "attention.output.dense")
        else:  # every head pruned: the block outputs its dense bias only
            zero = g.const(p + "zero", np.array(0.0, np.float32))
            b = g.const(p + "attention.output.dense.bias", w[p + "attention.output.dense.bias"])
            a = g.op("Add", [g.op("Mul", [xq, zero]), b])
        x = g.layer_norm(g.op("Add", [a, xq]), w, p + "attention.output.LayerNorm", eps)
        h = g.gelu(g.linear(x, w, p + "intermediate.dense"), opset)
        h = g.linear(h, w, p + "output.dense")
        x = g.layer_norm(g.op("Add", [h, x]), w, p + "output.LayerNorm", eps)

    cls = g.op("Gather", [x, g.const("idx0", np.array(0, np.int64))], "cls", axis=1)  # [B, H]
    pooled = g.op("Tanh", [g.linear(cls, w, "pooler.dense")], "pooled")
    if F:
        f = g.gelu(g.linear("features", w, "features.dense"), opset)
        f = g.gelu(g.linear(f, w, "features.output"), opset)
        pooled = g.op("Add", [pooled, f], "pooled_features")

    outputs = []
    for head in heads_present(w):
        n = w[f"heads.{head}.weight"].shape[0]
        y = g.linear(pooled, w, f"heads.{head}")
        g.nodes.append(helper.make_node("Identity", [y], [head], name=head + "_out"))
        outputs.append(helper.make_tensor_value_info(head, TensorProto.FLOAT, ["batch", n]))

    graph = helper.make_graph(g.nodes, "rubric_student", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="rubric-onnx-peer")
    model.ir_version = min(model.ir_version, 9)  # loadable by older runtimes too
    onnx.checker.check_model(model, full_check=True)
    return model


# ----------------------------------------------------------------------------- running

def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def make_inputs(cfg, w, batch, seq, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, cfg["vocab_size"], size=(batch, seq), dtype=np.int64)
    types = np.zeros((batch, seq), np.int64)
    if cfg.get("type_vocab_size", 2) > 1:
        types[:, seq // 2:] = 1
    mask = np.ones((batch, seq), np.float32)
    feed = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    F = feature_width(w)
    if F:
        feed["features"] = rng.random((batch, F), dtype=np.float32)
    return feed


def coerce(feed, sess):
    """Cast arrays to the dtypes the graph declares (mask may be int or float)."""
    kinds = {"tensor(int64)": np.int64, "tensor(float)": np.float32}
    out = {}
    for i in sess.get_inputs():
        if i.name not in feed:
            raise SystemExit(f"missing input {i.name!r}")
        out[i.name] = np.ascontiguousarray(feed[i.name], dtype=kinds[i.type])
    return out


def check(cfg, w, f32_path, threads, seq):
    sess = session(f32_path, threads)
    rng = np.random.default_rng(1)
    worst = 0.0
    for batch, t in ((3, seq), (2, max(2, seq // 3))):
        feed = make_inputs(cfg, w, batch, t, seed=batch)
        # random types and a padded tail on one row, so masking and types are exercised
        feed["token_type_ids"] = rng.integers(0, cfg.get("type_vocab_size", 2), size=(batch, t)).astype(np.int64)
        feed["attention_mask"][0, t // 2:] = 0.0
        if "features" in feed:
            feed["features"] = rng.normal(size=feed["features"].shape).astype(np.float32)
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, coerce(feed, sess))))
        ref = numpy_forward(cfg, w, feed["input_ids"], feed["token_type_ids"],
                            feed["attention_mask"], feed.get("features"))
        for k, r in ref.items():
            err = float(np.max(np.abs(got[k] - r)))
            worst = max(worst, err)
            print(json.dumps({"check": k, "batch": batch, "seq": t, "max_abs_err": err}))
    ok = worst <= 1e-4
    print(json.dumps({"check": "onnx_f32_vs_numpy", "max_abs_err": worst, "tolerance": 1e-4, "ok": ok}))
    return ok


def bench(path, precision, cfg, w, batches, seq, seconds, threads):
    sess = session(path, threads)
    for batch in batches:
        feed = coerce(make_inputs(cfg, w, batch, seq, seed=42), sess)
        for _ in range(3):  # warm-up
            sess.run(None, feed)
        n, t0 = 0, time.perf_counter()
        while True:
            sess.run(None, feed)
            n += 1
            el = time.perf_counter() - t0
            if el >= seconds:
                break
        print(json.dumps({"peer": "onnxruntime", "version": ort.__version__, "precision": precision,
                          "batch": batch, "seq": seq,
                          "pairs_per_second": round(n * batch / el, 1),
                          "ms_per_batch": round(1000.0 * el / n, 3)}), flush=True)


def run_inputs(paths, inputs_file, outputs_file, threads):
    data = np.load(inputs_file)
    saved = {}
    for precision, path in paths.items():
        sess = session(path, threads)
        feed = {k: data[k] for k in ("input_ids", "token_type_ids", "attention_mask", "features") if k in data.files}
        outs = sess.run(None, coerce(feed, sess))
        for o, v in zip(sess.get_outputs(), outs):
            saved[f"{precision}/{o.name}"] = v
    np.savez(outputs_file, **saved)
    print(json.dumps({"outputs": outputs_file, "arrays": {k: list(v.shape) for k, v in saved.items()}}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="rubric student folder")
    ap.add_argument("--out", help="where f32.onnx and int8.onnx go (default: a temp dir)")
    ap.add_argument("--check", action="store_true", help="compare ONNX f32 with a numpy forward pass")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,32,100")
    ap.add_argument("--seq", type=int, default=96)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--opset", type=int, default=17, help=">= 20 uses the Gelu op instead of Erf")
    ap.add_argument("--quantize-ops", default="MatMul",
                    help="op types quantize_dynamic may quantize ('default' = ORT's own list)")
    ap.add_argument("--inputs", help=".npz with input_ids/token_type_ids/attention_mask[/features]")
    ap.add_argument("--outputs", help="where --inputs results go (.npz, keys 'f32/<head>', 'int8/<head>')")
    ap.add_argument("--no-bench", action="store_true", help="skip the timings")
    a = ap.parse_args()
    if a.opset < 17:
        raise SystemExit("--opset must be >= 17 (LayerNormalization)")
    if a.inputs and not a.outputs:
        raise SystemExit("--inputs needs --outputs")

    from onnxruntime.quantization import QuantType, quantize_dynamic

    cfg, card, w = load_student(a.model)
    seq_max = cfg["max_position_embeddings"]
    if a.seq > seq_max:
        raise SystemExit(f"--seq {a.seq} > max_position_embeddings {seq_max}")
    out = a.out or tempfile.mkdtemp(prefix="rubric-onnx-")
    os.makedirs(out, exist_ok=True)
    f32_path, int8_path = os.path.join(out, "f32.onnx"), os.path.join(out, "int8.onnx")

    model = build_onnx(cfg, w, a.opset)
    onnx.save(model, f32_path)
    ops = None if a.quantize_ops == "default" else a.quantize_ops.split(",")
    quantize_dynamic(f32_path, int8_path, per_channel=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=ops)
    qops = {}
    for n in onnx.load(int8_path).graph.node:
        qops[n.op_type] = qops.get(n.op_type, 0) + 1
    print(json.dumps({"onnxruntime": ort.__version__, "onnx": onnx.__version__, "opset": a.opset,
                      "out": out, "heads": heads_present(w), "features": feature_width(w),
                      "pruned_heads": cfg.get("pruned_heads") or {},
                      "f32_bytes": os.path.getsize(f32_path), "int8_bytes": os.path.getsize(int8_path),
                      "int8_graph_ops": qops}), flush=True)

    ok = True
    if a.check:
        ok = check(cfg, w, f32_path, a.threads, min(a.seq, seq_max))
    if a.inputs:
        run_inputs({"f32": f32_path, "int8": int8_path}, a.inputs, a.outputs, a.threads)
    if not a.no_bench:
        batches = [int(b) for b in a.batches.split(",") if b]
        for precision, path in (("f32", f32_path), ("int8", int8_path)):
            bench(path, precision, cfg, w, batches, a.seq, a.seconds, a.threads)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
