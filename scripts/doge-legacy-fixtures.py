#!/usr/bin/env python3
"""
Reference checkpoints of the two older SmallDoge layouts, built with the ORIGINAL modeling code (vendored under
scripts/doge-legacy/, see its README.md for the commits and the one-line change), for tests/doge-legacy.test.ts.

  small-doge-2503  SmallDoges/small-doge ae7abf7 (2025-03-21): model.word_embed, pre_layernorm / pre_residual.weight,
                   post_layernorm / post_residual.weight, feed_forward, final_layernorm; config key hidden_bias and
                   dynamic_mask_ratio; A [num_attention_heads], dt_proj [num_attention_heads, kv*head_dim]; no top-k
                   (keep_window_size only acts through dynamic_mask_ratio > 0); no q/k norm.
  small-doge-2506  SmallDoges/small-doge 0e305a7 (modeling last changed by e5a2639, 2025-08-08): today's HF tensor
                   names and config keys, but A / dt_proj per query head and no q/k norm.

Every parameter is randomised (A of both signs, norm and residual weights != 1, biases != 0) so each part of the math
shows in the outputs. Per layout folder: config.json + model.safetensors written by the original code's
save_pretrained (the exact names a published checkpoint has), reference.safetensors (input_ids, labels, logits,
grad.<legacy tensor name>) and expected.json (loss, greedy prompt and tokens, the tensors whose gradients are saved).

Environment used (offline): python 3.11, torch 2.13.0+cpu (/opt/wheels), transformers 4.57.6 (/opt/pypi-more),
huggingface-hub 1.33.0, safetensors. transformers 4.57.6 pins huggingface-hub<1.0, which is not available offline:
its dependency_versions_table.py was edited in the virtual environment to accept 1.33 (the modeling code does not
touch the hub).

  python3 scripts/doge-legacy-fixtures.py [out_dir]     # default tests/fixtures/doge-legacy
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "doge-legacy", "vendor"))

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "fixtures", "doge-legacy")

# The sizes both cases share: GQA (4 query heads, 2 kv heads) so A / dt_proj per query head differ in shape from
# today's per-kv-head ones; sequence 10 > keep_window_size 5.
COMMON = dict(
    vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=64, keep_window_size=5, rms_norm_eps=1e-6,
    bos_token_id=0, eos_token_id=1, pad_token_id=2,
)

CASES = {
    # the published SmallDoge models of that time: untied here to show lm_head, biases on, dynamic RoPE (same as
    # default below original_max_position_embeddings)
    "small-doge-2503": dict(
        module="small_doge_2503", hidden_bias=True, tie_word_embeddings=False, dynamic_mask_ratio=0.0,
        rope_scaling={"rope_type": "dynamic", "factor": 4.0, "original_max_position_embeddings": 64},
        grads=["model.word_embed.weight", "model.layers.0.self_attn.A", "model.layers.0.self_attn.dt_proj.weight",
               "model.layers.0.self_attn.q_proj.weight", "model.layers.1.pre_residual.weight",
               "model.layers.1.feed_forward.down_proj.weight", "model.final_layernorm.weight", "lm_head.weight"],
    ),
    "small-doge-2506": dict(
        module="small_doge_2506", attention_bias=False, mlp_bias=False, tie_word_embeddings=True,
        grads=["model.embed_tokens.weight", "model.layers.0.self_attn.A", "model.layers.0.self_attn.dt_proj.weight",
               "model.layers.0.self_attn.k_proj.weight", "model.layers.1.input_residual",
               "model.layers.1.mlp.up_proj.weight", "model.norm.weight"],
    ),
}


def randomise(model, seed):
    """Every parameter away from its init: matrices N(0, 0.2), A N(0, 1) (both signs), 1-D weights 1 + N(0, 0.2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith(".A"):
                p.copy_(noise)
            elif p.dim() == 1 and name.endswith("bias"):
                p.copy_(0.1 * noise)
            elif p.dim() == 1:
                p.copy_(1.0 + 0.2 * noise)
            else:
                p.copy_(0.2 * noise)


def greedy_no_cache(model, prompt, steps):
    """Greedy decoding by full forwards (no cache): the reference math, independent of the cache code."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids])).logits
            ids.append(int(logits[0, -1].argmax()))
    return ids


def build(name, case):
    mod = __import__(case["module"] + ".modeling_doge", fromlist=["DogeForCausalLM"])
    cfg_mod = __import__(case["module"] + ".configuration_doge", fromlist=["DogeConfig"])
    kwargs = {k: v for k, v in case.items() if k not in ("module", "grads")}
    config = cfg_mod.DogeConfig(**COMMON, **kwargs)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = mod.DogeForCausalLM(config).float()
    randomise(model, seed=1 if name.endswith("2503") else 2)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.eval()  # no dropout (all rates are 0 anyway)

    g = torch.Generator().manual_seed(3)
    # no token twice in a row: equal tokens give equal d at layer 0, and which of two tied keys the top-k keeps then
    # depends on the last bit of d, which differs between matmul kernels (ties are the top-k's business, tested with
    # today's layout; these fixtures test the layout)
    input_ids = torch.stack([torch.randperm(COMMON["vocab_size"] - 3, generator=g)[:10] + 3 for _ in range(2)])
    labels = input_ids.clone()
    labels[1, 4] = -100
    out = model(input_ids=input_ids, labels=labels)
    out.loss.backward()
    params = dict(model.named_parameters())
    tensors = {"input_ids": input_ids.to(torch.int32), "labels": labels.to(torch.int32), "logits": out.logits.detach()}
    for t in case["grads"]:
        # a tied lm_head is the embedding itself (named_parameters lists it once, as the embedding)
        tensors["grad." + t] = params[t].grad.detach().clone()

    # Greedy decoding repeats tokens, and repeated tokens tie in d; with a cache, d of the same key is recomputed by a
    # matmul of another shape, so the top-k's choice among ties depends on rounding (this code's own generate() then
    # disagrees with its full forwards). The greedy reference therefore runs without top-k: keep_window_size =
    # max_position_embeddings on every layer (2503 never selects anyway); the forward above tests the top-k.
    for layer in model.model.layers:
        layer.self_attn.keep_window_size = COMMON["max_position_embeddings"]
    prompt = input_ids[0, :4].tolist()
    greedy = greedy_no_cache(model, prompt, 8)
    with torch.no_grad():
        gen = model.generate(torch.tensor([prompt]), max_new_tokens=8, do_sample=False, use_cache=True,
                             pad_token_id=COMMON["pad_token_id"], eos_token_id=None)[0].tolist()
    if gen != greedy:
        raise SystemExit(f"{name}: generate() with the cache {gen} differs from full-forward greedy {greedy}")

    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(folder, "reference.safetensors"))
    expected = {
        "layout": name, "loss": float(out.loss.detach()),
        "generate": {"prompt": prompt, "greedy": greedy, "keep_window_size": COMMON["max_position_embeddings"]},
        "grads": case["grads"], "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    for f in os.listdir(folder):
        os.chmod(os.path.join(folder, f), 0o644)  # save_file writes 0600
    print(f"{name}: loss {float(out.loss.detach()):.6f}, greedy {greedy}, {len(tensors)} reference tensors -> {folder}")


def moe_2506_runs():
    """Whether the 0e305a7 code can run is_moe at all (its decoder layer passes CDMoE's tuple to dropout)."""
    mod = __import__("small_doge_2506.modeling_doge", fromlist=["DogeForCausalLM"])
    cfg_mod = __import__("small_doge_2506.configuration_doge", fromlist=["DogeConfig"])
    config = cfg_mod.DogeConfig(**COMMON, is_moe=True, num_experts=16, num_experts_per_tok=2)
    config._attn_implementation = "eager"
    try:
        mod.DogeForCausalLM(config)(input_ids=torch.tensor([[3, 4, 5]]))
        return "runs"
    except Exception as e:  # noqa: BLE001 - reported, not hidden
        return f"fails: {type(e).__name__}: {e}"


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name, case in CASES.items():
        build(name, case)
    print("small-doge-2506 is_moe forward:", moe_2506_runs())
