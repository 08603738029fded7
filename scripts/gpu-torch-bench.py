"""PyTorch on CUDA for scripts/gpu-check.sh: the reference Doge of ../shared/bench (imported from REF_DIR, not copied)
on the GPU, fp32 and bf16 autocast, the same presets and step as bench_train.py / bench_generate.py.
usage: python3 gpu-torch-bench.py REF_DIR PRESET[,PRESET] ; prints one JSON line per (preset, dtype, bench)."""
import json, sys, time

ref, presets = sys.argv[1], sys.argv[2].split(",")
sys.path.insert(0, ref)
import torch
from doge_ref import Cfg, Doge
from bench_train import PRESETS

dev = "cuda"
name = torch.cuda.get_device_name(0)
for preset in presets:
    p = PRESETS[preset]
    for dtype in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = Doge(Cfg(**p["model"])).to(dev)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        B, T = p["batch"], p["seq"]
        ids = torch.randint(0, p["model"]["vocab_size"], (B, T), device=dev)
        amp = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dtype == "bf16")

        def step():
            with amp:
                _, loss = model(ids, labels=ids)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); opt.zero_grad(set_to_none=True)

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        n, t0 = 10, time.perf_counter()
        for _ in range(n):
            step()
        torch.cuda.synchronize()
        dt = (time.perf_counter() - t0) / n
        print(json.dumps({"bench": "train", "impl": "pytorch-eager", "device": name, "dtype": dtype, "preset": preset,
                          "batch": B, "seq_len": T, "step_ms": round(dt * 1000, 2), "tokens_per_s": round(B * T / dt, 1)}), flush=True)

        model.eval()
        cfg = Cfg(**p["model"])
        prompt = torch.randint(0, cfg.vocab_size, (1, 32), device=dev); new = 128

        def run():
            caches = [{} for _ in range(cfg.num_hidden_layers)]
            with torch.no_grad(), amp:
                lg, _ = model(prompt, caches=caches); nxt = lg[:, -1:].argmax(-1)
                for _ in range(new - 1):
                    lg, _ = model(nxt, caches=caches); nxt = lg[:, -1:].argmax(-1)
            torch.cuda.synchronize()

        run(); t0 = time.perf_counter(); run(); dt = time.perf_counter() - t0
        print(json.dumps({"bench": "decode", "impl": "pytorch-eager", "device": name, "dtype": dtype, "preset": preset,
                          "new_tokens": new, "tokens_per_s": round(new / dt, 1)}), flush=True)
        del model, opt
        torch.cuda.empty_cache()
