"""Training speed, images/second of training steps: a baseline path against `auto`, same model, same machine.

    python benchmarks/train_speed.py --device cpu --models convmixer ultimus --bs 128
    python benchmarks/train_speed.py --device cpu --models all --paths course fp32 auto --data /path/to/cifar10 --repeats 5
    python benchmarks/train_speed.py --baseline course --data /path/to/cifar10 --models ultimus convmixer
    python benchmarks/train_speed.py --processes 2 --device cpu --models ultimus

Paths (each through the library's own `Learner`, with the model's recipe: Adam/AdamW, one-cycle schedule, clipping):
- `fp32`   (the default baseline): the data on the device (`DeviceLoader`, batched augmentation), fp32, NCHW: what
           `eva_train` ran before precision and memory format became choices.
- `course` (`--baseline course`): albumentations per image in DataLoader workers (`get_dls`), fp32, NCHW: the
           submissions' way (seeds 000/004 list albumentations transforms); it needs the data (`--data`).
- `auto`:  the data on the device, the precision and memory format `get_runtime` picks for this machine (bf16 on GPUs
           that have it and on CPUs where it pays, fp16 on older GPUs, else fp32; channels_last on CUDA and on the CPU in
           fp32), `torch.compile` with `--compile`; `--precision` and `--memory-format` ask for others instead.
Each path runs `--warmup` steps (workers, cudnn autotune, compilation), then `--steps` timed ones. With `--repeats N`
the paths are timed N times, interleaved (A B A B ...) so that a machine's drift hits every path alike; the table gives
each path's median images/s and range, and `auto` against each other path: the median of the repeat-by-repeat ratios
and their min-max ("no measurable difference" when that range holds 1), and the seconds that 24 epochs of training
steps would take at the median speed (50,000 images; test passes not counted). Without `--data` the steps train on
random images (the speed of a step does not depend on its pixels).

`--processes N` compares instead one process (the `auto` path, `--threads` CPU threads) with N processes under
`torchrun` (data parallel: gloo on the CPU, one thread each as torchrun sets it; NCCL on GPUs, one GPU each), the same
global batch; each of the N runs this script again (`--worker`), and rank 0 times the steps."""
import argparse, math, statistics, subprocess, sys, time
from dataclasses import replace
import torch
from torch import nn
from eva_attention.core import get_runtime
from eva_attention.data import fake_cifar, load_cifar10
from eva_attention.loaders import AUGMENTS, DeviceLoader, get_augment, get_dls, get_tfms
from eva_attention.models import get_model, list_models, RECIPES
from eva_attention.report import cpu_model
from eva_attention.learner import CancelFit, Callback, GradClip, Learner, Scheduler
from eva_attention.run import make_opt, make_sched
from eva_attention.distributed import ddp, dist_info, init_distributed

class StepTimer(Callback):
    "Seconds of `steps` training steps after `warmup` ones (synchronized on CUDA); then stop the fit"
    order = 30
    def __init__(self, warmup, steps): self.warmup, self.steps, self.k = warmup, steps, 0
    def after_step(self, learn):
        self.k += 1
        if learn.rt.device.type == 'cuda': torch.cuda.synchronize(learn.rt.device)
        if self.k == self.warmup: self.t0 = time.perf_counter()
        if self.k == self.warmup + self.steps: self.seconds = time.perf_counter() - self.t0; raise CancelFit()

def bench(name, data, path, device, bs, warmup, steps, compile=False, workers=2, precision='auto', memory_format='auto'):
    "Training images/s of model `name` on `path` ('fp32', 'course' or 'auto'), and the runtime it ran with"
    r = RECIPES[name]
    rt = get_runtime(device, *((precision, memory_format) if path == 'auto' else ('fp32', 'contiguous')))
    rt, (rank, world, _) = replace(rt, device=init_distributed(rt.device)), dist_info()   # under torchrun: one of several
    model = rt.put(get_model(name))
    if path == 'course':
        dl, _ = get_dls(data, bs, num_workers=workers, seed=0, train_tfms=get_tfms(True, AUGMENTS[r.augment], seed=0))
    else: dl = DeviceLoader(data.x_train, data.y_train, bs, shuffle=True, drop_last=True, augment=get_augment(r.augment),
                            device=rt.device, generator=torch.Generator(rt.device).manual_seed(0), rank=rank, world_size=world,
                            aug_generator=torch.Generator(rt.device).manual_seed(rank))
    opt = make_opt(model, r)
    timer = StepTimer(warmup, steps)
    cbs = [Scheduler(make_sched(opt, r, 10 * (warmup + steps))), *([GradClip(r.grad_clip)] if r.grad_clip else []), timer]
    Learner(ddp(torch.compile(model) if compile else model, rt.device), dl, nn.CrossEntropyLoss(label_smoothing=r.label_smoothing), opt, cbs, rt
            ).fit(math.ceil((warmup + steps) / len(dl)) + 1)
    return bs * steps / timer.seconds, rt

def bench_processes(args, name, bs):
    "Images/s of `name` on the `auto` path in `args.processes` processes under torchrun (rank 0's timing of the global batch)"
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(args.processes), '--master_addr', '127.0.0.1',
           '--master_port', str(args.port), __file__, '--worker', '--models', name, '--bs', str(bs), '--warmup', str(args.warmup),
           '--steps', str(args.steps), *(['--device', args.device] if args.device else []), *(['--data', args.data] if args.data else []),
           *(['--compile'] if args.compile else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(next(l.split()[-1] for l in out.splitlines() if l.startswith('images/s')))

HEADER = ('| model | bs | path (precision, memory format) | images/s (median) | range | 24 epochs (s) | auto / this path: median ratio (range) |\n'
          '|---|---:|---|---:|---|---:|---|')

def measure(name, data, args, bs):
    "Images/s of model `name` on each of `args.paths`, `args.repeats` times, the paths interleaved; the runtime of each path"
    ips, rts = {p: [] for p in args.paths}, {}
    for _ in range(args.repeats):
        for p in args.paths:
            kw = dict(precision=args.precision, memory_format=args.memory_format, compile=args.compile) if p == 'auto' else {}
            v, rts[p] = bench(name, data, p, args.device, bs, args.warmup, args.steps, workers=args.workers, **kw)
            ips[p].append(v)
    return ips, rts

def verdict(ratios) -> str:
    "A median ratio, its range, and what the range allows one to say"
    lo, med, hi = min(ratios), statistics.median(ratios), max(ratios)
    if len(ratios) < 3: return f'{med:.2f}: {len(ratios)} measurement(s), no spread; give --repeats 5 before calling it a difference'
    say = 'no measurable difference' if lo <= 1 <= hi else f"{'faster' if med > 1 else 'slower'} in every repeat"
    return f'{med:.2f} ({lo:.2f}-{hi:.2f}): {say}'

def table(name, bs, ips, rts) -> list:
    "Markdown rows of one model: each path's median images/s, range and 24 epochs; `auto` against each other path"
    rows = []
    for p, v in ips.items():
        rt, med = rts[p], statistics.median(v)
        vs = verdict([a / b for a, b in zip(ips['auto'], v)]) if p != 'auto' and 'auto' in ips else ''
        rows.append(f"| {name} | {bs} | {p} ({rt.precision}, {rt.memory_format}) | {med:,.0f} | {min(v):,.0f}-{max(v):,.0f} | "
                    f"{24 * (50_000 // bs) * bs / med:,.0f} | {vs} |")
    return rows

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', nargs='+', default=['ultimus', 'convmixer'], help="model names, or 'all'")
    ap.add_argument('--baseline', default='fp32', choices=['fp32', 'course'], help='the path `auto` is compared with')
    ap.add_argument('--paths', nargs='+', default=None, choices=['course', 'fp32', 'auto'], help='paths to time (default: the baseline and auto)')
    ap.add_argument('--repeats', type=int, default=1, help='time every path this many times, interleaved')
    ap.add_argument('--data', default=None, help='CIFAR-10 folder (default: random images; --baseline course needs it)')
    ap.add_argument('--bs', type=int, default=None, help="batch size (default: each model's recipe's)")
    ap.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    ap.add_argument('--steps', type=int, default=10, help='timed steps')
    ap.add_argument('--workers', type=int, default=2, help="DataLoader workers for the course path (Colab has 2 CPUs)")
    ap.add_argument('--compile', action='store_true', help='torch.compile the model in the auto path')
    ap.add_argument('--precision', default='auto', help="the second path's precision (auto, fp32, bf16, fp16)")
    ap.add_argument('--memory-format', default='auto', help="the second path's memory format (auto, channels_last, contiguous)")
    ap.add_argument('--device', default=None)
    ap.add_argument('--threads', type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument('--processes', type=int, default=1, help='compare one process with this many under torchrun (the auto path)')
    ap.add_argument('--port', type=int, default=29517, help="torchrun's port on 127.0.0.1, with --processes")
    ap.add_argument('--worker', action='store_true', help='(internal) one of the processes torchrun starts for --processes')
    args = ap.parse_args()
    args.paths = args.paths or [args.baseline, 'auto']
    if args.models == ['all']: args.models = list_models()
    if args.threads: torch.set_num_threads(args.threads)
    data = load_cifar10(args.data) if args.data else fake_cifar(2048, 16)
    torch.backends.cudnn.benchmark = True
    if args.worker:                                                     # under torchrun: time the auto path, rank 0 says it
        ips, rt = bench(args.models[0], data, 'auto', args.device, args.bs, args.warmup, args.steps, compile=args.compile)
        if dist_info().rank == 0: print(f'images/s {rt} {ips}')
        sys.exit()
    rt0 = get_runtime(args.device)
    print(f'device: {rt0.device_name}{", " + cpu_model() if rt0.device.type == "cpu" else ""}, torch {torch.__version__}; {data.source}; '
          f'{args.warmup} warm-up steps, {args.steps} timed steps, {args.repeats} repeat(s) of each path, interleaved'
          f'{"; auto compiled" if args.compile else ""}')
    if args.processes == 1: print(HEADER)
    for name in args.models:
        bs = args.bs or RECIPES[name].bs
        if args.processes > 1:
            one, rt = bench(name, data, 'auto', args.device, bs, args.warmup, args.steps, compile=args.compile)
            many = bench_processes(args, name, bs)
            print(f'{name} (global bs {bs}, {rt.precision}): 1 process ({rt.device_name}) {one:,.1f} images/s; '
                  f'{args.processes} processes (torchrun, {"NCCL" if rt.device.type == "cuda" else "gloo"}) {many:,.1f} images/s; '
                  f'ratio {many / one:.2f}')
            continue
        ips, rts = measure(name, data, args, bs)
        print('\n'.join(table(name, bs, ips, rts)), flush=True)
