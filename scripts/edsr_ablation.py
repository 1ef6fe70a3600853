"""EDSR ablation (issue 8): number of residual blocks x upsampler type, PSNR-Y on Set5/Set14.

Trains one small x4 EDSR per grid cell with the same budget (resumable: rerun to continue), then
evaluates every finished cell and writes a markdown table and JSON next to the runs.

    python scripts/edsr_ablation.py --blocks 4 8 --upsamplers pixelshuffle deconv nearest \
        --iterations 3000 --out runs/ablation
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SR_FILTER_SHARED", ROOT.parent / "shared")) / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--upsamplers", nargs="+", default=["pixelshuffle", "deconv", "nearest"])
    ap.add_argument("--feat", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", type=Path, default=SHARED)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "ablation")
    ap.add_argument("--eval-only", action="store_true", help="only evaluate the cells already trained")
    args = ap.parse_args()

    from sr_filter.evaluation import evaluate_folder, network_upscaler
    from sr_filter.training import Trainer, config_from_dict

    rows = []
    for blocks in args.blocks:
        for up in args.upsamplers:
            name = f"edsr_f{args.feat}_b{blocks}_{up}"
            cfg = config_from_dict({
                "name": name, "out_dir": str(args.out), "seed": 0, "threads": args.threads,
                "model": {"arch": "edsr", "settings": {"num_feat": args.feat, "num_block": blocks, "upsampler": up}},
                "data": {"train_dirs": [str(args.data / "train" / "T91"), str(args.data / "train" / "BSD200")],
                         "scale": 4, "patch": args.patch, "batch": args.batch},
                "optim": {"lr": 5e-4, "iterations": args.iterations, "warmup": 100},
                "loss": {"l1": 1.0},
                "val": {"dirs": [str(args.data / "benchmarks" / "Set5")], "every": max(500, args.iterations // 5)},
            })
            trainer = Trainer(cfg)
            if not args.eval_only:
                trainer.run()
            elif (cfg.run_dir / "latest.pt").exists():
                trainer.load_checkpoint(cfg.run_dir / "latest.pt")
            else:
                continue
            net = trainer.model.eval()
            res = {s: evaluate_folder(network_upscaler(net), args.data / "benchmarks" / s, 4) for s in ("Set5", "Set14")}
            params = sum(p.numel() for p in net.parameters() if p.requires_grad)
            rows.append({"blocks": blocks, "upsampler": up, "iterations": trainer.iteration, "params": params,
                         **{f"{s}_psnr": round(r.psnr, 2) for s, r in res.items()},
                         **{f"{s}_ssim": round(r.ssim, 4) for s, r in res.items()}})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=2))
    lines = ["| blocks | upsampler | params | iterations | Set5 PSNR / SSIM | Set14 PSNR / SSIM |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['blocks']} | {r['upsampler']} | {r['params']:,} | {r['iterations']} | {r['Set5_psnr']:.2f} / {r['Set5_ssim']:.4f} "
              f"| {r['Set14_psnr']:.2f} / {r['Set14_ssim']:.4f} |" for r in rows]
    (args.out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
