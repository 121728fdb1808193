"""Which variant of the course's script reproduces seed 003's curve? Short runs scored against its log.

    python benchmarks/script_variants.py --data ../shared/data/cifar10-jpg --epochs 6 --variants defaults pos_zero bs128
    python benchmarks/script_variants.py --list

Each variant is `convvit_s10` under the `course_script` recipe (25-epoch schedule, AdamW 0.01, the script's per-image
augmentation) with one thing changed; it trains the first `--epochs` epochs of that 25-epoch schedule and records its
per-epoch train and test accuracy. The score is the mean absolute gap, in points, between its test accuracy and the one
seed 003 logged at the same epochs (`nbs/seed_logs/003_b1a5013d46bb1ef4.csv`). Rows are appended to
`--out`/curves.csv (one per variant and epoch) with what ran them, so variants can be run in several sittings; a
variant already in the file is skipped unless `--again`. Denormal floats are flushed to zero (on the CPU the channel
attention makes them, and they made steps over 2x slower)."""
import argparse, os, platform, time
from dataclasses import replace
from pathlib import Path
import pandas as pd
import torch
from eva_attention.core import flush_denormals
flush_denormals()                 # before torch starts its CPU threads: they inherit it (see 00_core)
from torch import nn
from eva_attention.cli import get_data
from eva_attention.run import RunConfig, make_learner
from eva_attention.models import get_model, recipe_for

LOG = Path(__file__).parents[1] / 'nbs' / 'seed_logs' / '003_b1a5013d46bb1ef4.csv'

def pos_zero(m): nn.init.zeros_(m[0].pos_embedding)

# name: (what changes, recipe fields changed, a function applied to the fresh model)
VARIANTS = {
    'defaults':  ("the script's defaults, our model as it is (positional map ~ N(0, 1))", {}, None),
    'pos_zero':  ("positional map initialised to zeros", {}, pos_zero),
    'bs128':     ("batch 128 (391 steps an epoch) instead of 512", dict(bs=128), None),
}

def run_variant(name, data, epochs, seed=0, threads=None):
    "Per-epoch history of `convvit_s10` under `course_script` with variant `name`, for the first `epochs` epochs"
    what, fields, init = VARIANTS[name]
    model = get_model('convvit_s10')
    cfg = RunConfig(model='convvit_s10', seed=seed, precision='fp32', memory_format='auto', threads=threads, quiet=True)
    learn = make_learner(model, data, replace(recipe_for('convvit_s10', 'course_script'), **fields), cfg)
    if init: init(model)                                   # after make_learner's set_seed: the rest of the init unchanged
    t0 = time.perf_counter()
    h = learn.fit(epochs).epochs
    return h.assign(variant=name, seconds=time.perf_counter() - t0, device=learn.rt.device_name)

def score(curves, log):
    "Mean |test acc - seed 003's test acc| in points over the epochs each variant ran, and the same for train acc"
    m = curves.merge(log, on='epoch', suffixes=('', '_log'))
    m = m.assign(test_gap=100 * (m.test_acc - m.test_acc_log).abs(), train_gap=100 * (m.train_acc - m.train_acc_log).abs())
    return m.groupby('variant', sort=False)[['test_gap', 'train_gap']].mean().round(2)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', help='CIFAR-10 (a path; default $EVA_DATA, else a download)')
    p.add_argument('--epochs', type=int, default=6, help="epochs of the 25-epoch schedule to run")
    p.add_argument('--variants', nargs='+', default=['defaults', 'pos_zero', 'bs128'], choices=list(VARIANTS))
    p.add_argument('--out', default='results/convvit_s10-variants')
    p.add_argument('--threads', type=int)
    p.add_argument('--subset', type=int, help='a stratified subset of this many training images (a smoke test)')
    p.add_argument('--again', action='store_true', help='run a variant again even if curves.csv has it')
    p.add_argument('--list', action='store_true', help='list the variants and stop')
    a = p.parse_args()
    if a.list:
        for k, (what, *_) in VARIANTS.items(): print(f'{k:16} {what}')
        raise SystemExit
    out, log = Path(a.out), pd.read_csv(LOG, comment='#').assign(epoch=lambda d: d.epoch + 1)   # ours count from 1
    out.mkdir(parents=True, exist_ok=True)
    f = out / 'curves.csv'
    old = pd.read_csv(f) if f.exists() else pd.DataFrame(columns=['variant'])
    data = get_data(a.data, a.subset)
    for v in a.variants:
        if v in set(old.variant) and not a.again: print(f'{v}: in {f} already (--again to rerun)'); continue
        h = run_variant(v, data, a.epochs, threads=a.threads).assign(what=VARIANTS[v][0], torch=torch.__version__,
                                                                     machine=platform.machine(), flush_denormal=True)
        old = pd.concat([old[old.variant != v], h], ignore_index=True)
        tmp = f.with_suffix('.tmp'); old.to_csv(tmp, index=False); os.replace(tmp, f)
        print(h[['epoch', 'train_acc', 'test_acc', 'time']].to_string(index=False))
    print(score(old, log).to_string())
