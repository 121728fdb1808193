"""What denormal floats cost a CPU training step of `convvit_s10`, with and without flushing them to zero.

    python benchmarks/denormals.py --threads 2 --steps 8

Each mode runs in a fresh process (the flush-to-zero mode must be set before torch starts its threads, see 00_core):
a training step of a fresh model on random images, then the same after scaling the query and key weights of every
layer up `--scale` times, so that the channel attention's logits are as large as training makes them and its softmax
gives weights small enough to be denormal. Prints images/s of each (after `--warmup` steps, over `--steps`)."""
import argparse, json, subprocess, sys, time

def measure(flush, threads, bs, warmup, steps, scale):
    "images/s of a fresh model and of one with large attention logits, in this process"
    import torch
    from eva_attention.core import flush_denormals
    if flush: flush_denormals()                                       # first: the threads torch starts inherit it
    torch.set_num_threads(threads); torch.manual_seed(0)
    from eva_attention.models import get_model
    from eva_attention.conv_vit import ChannelAttention
    m = get_model('convvit_s10').to(memory_format=torch.channels_last)
    x, y = torch.randn(bs, 3, 32, 32).contiguous(memory_format=torch.channels_last), torch.randint(0, 10, (bs,))
    def speed():
        def step(): m.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward()
        for _ in range(warmup): step()
        t = time.perf_counter()
        for _ in range(steps): step()
        return bs * steps / (time.perf_counter() - t)
    fresh = speed()
    with torch.no_grad():
        for a in m.modules():
            if isinstance(a, ChannelAttention): a.to_qkv.weight[:2 * a.to_qkv.out_channels // 3] *= scale   # q and k
    return dict(flush=flush, fresh=round(fresh), large_logits=round(speed()))

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=2); p.add_argument('--bs', type=int, default=512)
    p.add_argument('--warmup', type=int, default=2); p.add_argument('--steps', type=int, default=5)
    p.add_argument('--scale', type=float, default=6.)
    p.add_argument('--worker', choices=['kept', 'flushed'], help=argparse.SUPPRESS)
    a = p.parse_args()
    args = (a.threads, a.bs, a.warmup, a.steps, a.scale)
    if a.worker: print(json.dumps(measure(a.worker == 'flushed', *args))); raise SystemExit
    print(f'convvit_s10, batch {a.bs}, {a.threads} threads, images/s of a training step')
    for mode in ('kept', 'flushed'):
        out = subprocess.run([sys.executable, __file__, '--worker', mode, *sum([[f'--{k}', str(v)] for k, v in
                             zip(('threads', 'bs', 'warmup', 'steps', 'scale'), args)], [])], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout)
        print(f"denormals {mode:8}: fresh model {r['fresh']:6,}   q, k weights x{a.scale:g}: {r['large_logits']:6,}")
