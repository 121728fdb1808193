"""Images/second of the submissions' augmentation (seeds 000/004): albumentations in DataLoader workers vs batched tensor ops on the CPU.

    python benchmarks/augment.py --data ../shared/data/cifar10-jpg --n 10000 --bs 512 --workers 2

(a) `get_tfms` + `ImageDataset` + `DataLoader(num_workers=--workers)`: decode-free per-image augmentation + collate.
(b) `to_tensor` + `batch_augment` on the CPU in the main process, on the same shuffled batches (uint8 index, normalize,
    crop/flip/cutout), with `--threads` torch threads.
Each path runs one warm-up epoch (worker start-up, allocator), then the best of `--epochs` timed epochs is reported.
"""
import argparse, time
import torch
from torch.utils.data import DataLoader
from eva_attention.data import load_cifar10, to_tensor
from eva_attention.loaders import get_tfms, ImageDataset, seed_worker, batch_augment


def bench_albumentations(x, y, bs, workers, epochs):
    "Best images/s over `epochs` of the per-image albumentations DataLoader"
    dl = DataLoader(ImageDataset(x, y, get_tfms(seed=0)), batch_size=bs, shuffle=True, num_workers=workers,
                    persistent_workers=workers > 0, worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(0))
    best = 0.
    for e in range(epochs + 1):  # epoch 0 warms up (starts the workers)
        t0 = time.perf_counter()
        n = sum(len(xb) for xb, yb in dl)
        if e: best = max(best, n / (time.perf_counter() - t0))
    return best


def bench_batched(x, y, bs, epochs):
    "Best images/s over `epochs` of shuffle-index + `to_tensor` + `batch_augment` on the CPU"
    xt, yt, g = torch.from_numpy(x), torch.from_numpy(y), torch.Generator().manual_seed(0)
    best = 0.
    for e in range(epochs + 1):
        t0 = time.perf_counter()
        idx = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), bs):
            j = idx[i:i + bs]  # index_select: on a CPU far faster than xt[j] for a uint8 NHWC tensor
            batch_augment(to_tensor(xt.index_select(0, j)), generator=g), yt[j]   # the batch a step would take
        if e: best = max(best, len(xt) / (time.perf_counter() - t0))
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='/work/shared/data/cifar10-jpg', help='anything load_cifar10 reads')
    p.add_argument('--n', type=int, default=10000, help='training images per epoch')
    p.add_argument('--bs', type=int, default=512, help='batch size')
    p.add_argument('--workers', type=int, default=2, help='DataLoader workers for (a)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads for (b); 1 by default: on a small shared CPU, OpenMP threads fighting other jobs slow it down')
    p.add_argument('--epochs', type=int, default=3, help='timed epochs per path (best is reported)')
    a = p.parse_args()
    d = load_cifar10(a.data)
    x, y = d.x_train[:a.n], d.y_train[:a.n]
    print(f'data: {d.source}; {len(x)} images, bs {a.bs}; torch {torch.__version__}, {torch.get_num_threads()} threads by default')
    ra = bench_albumentations(x, y, a.bs, a.workers, a.epochs)
    print(f'(a) albumentations DataLoader, {a.workers} workers: {ra:,.0f} images/s')
    torch.set_num_threads(a.threads)
    rb = bench_batched(x, y, a.bs, a.epochs)
    print(f'(b) batched to_tensor + batch_augment, CPU, {a.threads} thread(s): {rb:,.0f} images/s')
    print(f'ratio: {rb / ra:.1f}')


if __name__ == '__main__': main()
