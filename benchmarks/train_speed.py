"""Training speed, images/second: a course-style pipeline against our default, same model, same GPU.

    python benchmarks/train_speed.py --data /path/to/cifar10 --models ultimus convmixer

(a) course style: albumentations per image in DataLoader workers (`get_dls`), fp32, eager, default memory format;
(b) ours: the training set on the device as uint8, `batch_augment` there (`DeviceLoader`), mixed precision
    (`amp_dtype`: bf16, or fp16 with a GradScaler), channels_last on CUDA, and `torch.compile` with `--compile`.
Both run the library's own `Learner` with the model's recipe (Adam/AdamW + one-cycle); one warm-up epoch each
(workers, cudnn autotune, compilation), then the mean of `--epochs` timed epochs. Prints images/s of each and the ratio.
It also runs on a CPU (slowly: use --subset); the figures that matter are a GPU's."""
import argparse, time
import torch
from torch import nn
from eva_attention.core import amp_dtype, get_device
from eva_attention.data import load_cifar10
from eva_attention.loaders import AUGMENTS, DeviceLoader, get_augment, get_dls, get_tfms, stratified_subset
from eva_attention.models import get_model, RECIPES
from eva_attention.learner import Callback, Learner, make_opt, make_sched
from eva_attention.report import device_name

class EpochTimes(Callback):
    "Seconds of each epoch's training batches (synchronized on CUDA)"
    def __init__(self): self.times = []
    def before_epoch(self, learn): sync(learn.dev); self.t0 = time.perf_counter()
    def after_train(self, learn): sync(learn.dev); self.times.append(time.perf_counter() - self.t0)

def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def bench(name, data, dev, fast, epochs, compile=False, workers=2):
    "Mean training images/s over `epochs` timed epochs (after one warm-up) of model `name`"
    r, model = RECIPES[name], get_model(name).to(dev)
    if fast:
        dtype = amp_dtype(dev)
        if dev.type == 'cuda': model = model.to(memory_format=torch.channels_last)
        dl = DeviceLoader(data.x_train, data.y_train, r.bs, shuffle=True, drop_last=True, augment=get_augment(r.augment),
                          device=dev, generator=torch.Generator(dev).manual_seed(0), channels_last=dev.type == 'cuda')
    else:
        dtype = None
        dl, _ = get_dls(data, r.bs, num_workers=workers, seed=0, train_tfms=get_tfms(True, seed=0, **AUGMENTS[r.augment]))
    opt = make_opt(model, r)
    sched = make_sched(opt, r, (epochs + 1) * len(dl))
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    net = torch.compile(model) if compile else model
    timer = EpochTimes()
    Learner(net, dl, None, nn.CrossEntropyLoss(label_smoothing=r.label_smoothing), opt, sched, dtype, scaler, r.grad_clip,
            cbs=[timer]).fit(epochs + 1)
    times = timer.times[1:]                                             # the first epoch warms up
    n = len(dl) * r.bs if fast else len(data.y_train)
    return n * len(times) / sum(times)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', default=None, help='CIFAR-10 folder (default: $EVA_DATA, else torchvision download)')
    ap.add_argument('--models', nargs='+', default=['ultimus', 'convmixer'])
    ap.add_argument('--epochs', type=int, default=1, help='timed epochs after the warm-up one')
    ap.add_argument('--subset', type=int, default=None, help='train on this many images (for a quick CPU run)')
    ap.add_argument('--workers', type=int, default=2, help="DataLoader workers for (a) (Colab has 2 CPUs)")
    ap.add_argument('--compile', action='store_true', help='torch.compile the model in (b)')
    ap.add_argument('--device', default=None)
    args = ap.parse_args()
    data = load_cifar10(args.data)
    if args.subset: data = stratified_subset(data, args.subset)
    dev = get_device(args.device)
    torch.backends.cudnn.benchmark = True
    print(f'device: {device_name(dev)}, torch {torch.__version__}, {len(data.y_train)} training images ({data.source})')
    for name in args.models:
        a = bench(name, data, dev, False, args.epochs, workers=args.workers)
        b = bench(name, data, dev, True, args.epochs, compile=args.compile)
        print(f'{name}: (a) course-style {a:,.0f} images/s, (b) ours {b:,.0f} images/s')
        print(f'{name} ratio: {b / a:.1f}')
