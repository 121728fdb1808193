"""One prepared GPU run: every model tried on the device, then records, the speed table and the host-sync count, each
started only if it can end before a deadline. `tools/gpu_run.sh` sets a bare machine up and calls this script.

    python benchmarks/gpu_run.py --data data/cifar10-jpg --out $OUT                 # on the GPU machine
    python benchmarks/gpu_run.py --data data/cifar10-jpg --out /tmp/o --rehearse    # on a CPU: tiny sizes, same path

What it does, in order (each step's output goes to the log; every finished run folder is added to a tar in `--out`
at once, so a call cut short still returns what finished):
1. the device, torch's version and what `--precision auto` picks there;
2. smoke: every registered model (and the per-image pipeline of `--recipe course_script`) for a few steps, a test pass
   and a report, all at once; a failure stops the script (the CUDA path must fail in the first minute, not the ninth);
3. the jobs of `JOBS`, in order: a training record (`eva_train` into `results/<name>/`) starts only if the smoke's speed
   says it ends before the deadline, and is stopped if its own first epochs say it will not; records run `--parallel`
   at a time (each record's `summary.json` gets `concurrent_runs`: how many shared the device at most); the speed
   benchmark and the sync count run alone. A job whose record is already in `results/` is not run again.
"""
import argparse, json, os, re, shutil, signal, subprocess, sys, tarfile, tempfile, time, warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EPOCH_LINE = re.compile(r'^\s*(\d+)\s+[-\d.]+\s+[-\d.]+\s+[-\d.]+\s+[-\d.]+\s+[-\d.e+]+\s+([\d.]+)\s*$')  # epoch_line()
SPEED_MODELS = ['ultimus', 'convmixer', 'vit_conv1x1']

@dataclass
class Job:
    "One step of the run: a training record (`model`, `recipe`, `seed`), or the benchmark / sync count (`kind`)"
    kind: str                      # 'train' | 'bench' | 'sync'
    model: str = ''
    recipe: str | None = None
    seed: int = 0
    args: list = field(default_factory=list)   # 'bench': train_speed.py's extra options
    why: str = ''                  # the issue item it answers

    @property
    def name(self):
        if self.kind != 'train': return f"{self.kind}{''.join(self.args).replace('--', '-')}"
        return self.model + (f'-{self.recipe}' if self.recipe else '') + (f'-seed{self.seed}' if self.seed else '')

def T(model, recipe=None, seed=0, why=''): return Job('train', model, recipe, seed, why=why)

JOBS = [  # the order of the issues "One prepared GPU run" (1-5) and "every session-10 model at three seeds" (6)
    T('convmixer', why='1: submission 004 90.95%, goal >= 93.5%'), T('vit_conv1x1', why='2: submission 004 68.50%, goal >= 80%'),
    Job('bench', why='3: our path against the course-style pipeline'), Job('sync', 'convmixer', why='5: host syncs per step'),
    T('convmixer_s10', why='4'), T('convmixer', 'course_script', why='4'), T('vit_conv1x1', 'course_script', why='4'),
    T('convmixer', seed=1, why='6'), T('convmixer', seed=2, why='6'), T('vit_conv1x1', seed=1, why='6'),
    T('vit_conv1x1', seed=2, why='6'), T('convvit', seed=1, why='6'), T('convvit', seed=2, why='6'),
    T('convvit_s10', 'course_script', why='6: beside its CPU record'),
    Job('bench', args=['--compile'], why='3: the same, compiled'),
]

class Run:
    "The state of this call: the clock, the log, the archives that come back, and the plan's outcome"
    def __init__(self, a):
        self.a, self.t0 = a, float(os.environ.get('GPU_RUN_T0') or time.time())   # the shell's start, install included
        self.out, self.results = Path(a.out), Path(a.results)
        self.out.mkdir(parents=True, exist_ok=True); self.results.mkdir(parents=True, exist_ok=True)
        self.work = Path(a.work); (self.work / 'logs').mkdir(parents=True, exist_ok=True)
        self.tar_k, self.outcome, self.running, self.factor = 1, [], {}, 1.
        self.ratios, self.problems = [], []                             # each ended record: its seconds / its prediction
    def now(self): return time.time() - self.t0
    def left(self): return self.a.deadline - self.now()
    def say(self, msg): print(f'[{self.now():6.1f}s] {msg}', flush=True)
    def record(self, job, status, **kw):
        self.outcome.append(dict(job=job.name, kind=job.kind, status=status, why=job.why, **kw))
        (self.out / 'gpu_run.json').write_text(json.dumps(dict(deadline_s=self.a.deadline, jobs=self.outcome), indent=1))
    def archive(self, folder:Path, arcname:str):
        "Add `folder` to the current tar in `out` (a new tar once it passes `--tar-mb`): at most 8 files come back, 16 MiB each"
        tar = self.out / f'records-{self.tar_k}.tar'
        if tar.exists() and tar.stat().st_size > self.a.tar_mb * 2**20:
            self.tar_k += 1; tar = self.out / f'records-{self.tar_k}.tar'
        with tarfile.open(tar, 'a') as t: t.add(folder, arcname=arcname, filter=_kept)

def _kept(i:tarfile.TarInfo):
    "What of a run folder comes back: not its checkpoint (the weights are kept), not its lock"
    return None if i.name.endswith(('checkpoint.pt', '.eva_train.lock')) else i

def sh(cmd, log:Path, env=None):
    "Start `cmd` in the repository with its output in `log`, in its own process group (a stop ends its workers too)"
    return subprocess.Popen(cmd, stdout=open(log, 'w'), stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)

def rel(p:Path) -> str:
    "`p` relative to the repository when inside it: a record names no path of the machine that made it"
    p = Path(p).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)

def stop(p):
    "End process `p` and its children"
    try: os.killpg(p.pid, signal.SIGTERM); p.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try: os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError: pass

def epoch_times(log:Path) -> list:
    "Seconds of each epoch an `eva_train` log has printed so far"
    return [float(m[2]) for l in log.read_text(errors='replace').splitlines() if (m := EPOCH_LINE.match(l))]

def shrink_weights(folder:Path, limit_mb:float):
    "Records keep their weights up to `limit_mb`: in half precision when fp32 is over it, not at all when that is too"
    w = folder / 'weights.pt'
    if not w.exists() or w.stat().st_size <= limit_mb * 2**20: return 'fp32' if w.exists() else None
    import torch
    sd = torch.load(w, map_location='cpu', weights_only=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, w)
    if w.stat().st_size <= limit_mb * 2**20: return 'fp16'
    w.unlink(); return 'dropped'

def eva_train_cmd(r:Run, job:Job, out:Path, smoke=False):
    a = r.a
    sized = ['--subset', str(a.smoke_subset), '--epochs', str(a.smoke_epochs), '--bs', str(a.smoke_bs)] if smoke or a.rehearse else []
    return ['eva_train', '--model', job.model, *(['--recipe', job.recipe] if job.recipe else []), '--seed', str(job.seed),
            '--data', a.data, '--out', rel(out), *(['--device', a.device] if a.device else []), *sized]

def smoke(r:Run) -> dict:
    "Every model, and one per-image pipeline, for a few steps, a test pass and a report, all at once; their images/s"
    from eva_attention.models import list_models
    jobs = [T(m) for m in list_models()] + [T('convmixer', 'course_script')]
    procs = {j.name: (j, sh(eva_train_cmd(r, j, r.work / 'smoke' / j.name, smoke=True), r.work / 'logs' / f'smoke-{j.name}.log',
                            env=os.environ | {'TQDM_DISABLE': '1'})) for j in jobs}
    speed, bad = {}, []
    for name, (j, p) in procs.items():
        if p.wait() != 0: bad.append(name); continue
        s = json.loads((r.work / 'smoke' / name / 'summary.json').read_text())
        speed[name] = s['n_train'] / max(s['sec_per_epoch'], 1e-6)     # images/s of an epoch (its test pass included)
        r.say(f"smoke {name}: ok, {s['test_acc']:.1%} on {s['n_test']} test images, {s['precision']} {s['memory_format']}, "
              f"{speed[name]:,.0f} images/s (epochs of {s['n_train']} images, {s['device']})")
    for name in bad:
        r.say(f"smoke {name}: FAILED; its log:\n" + (r.work / 'logs' / f'smoke-{name}.log').read_text(errors='replace')[-4000:])
    r.archive(r.work / 'logs', 'logs-smoke')
    if bad: raise SystemExit(f'gpu_run: the smoke test failed for {", ".join(bad)}: fix it and send the command again')
    return speed

def _epochs(r:Run, job:Job) -> int:
    "Epochs `job`'s record trains: its recipe's, or the rehearsal's"
    from eva_attention.models import recipe_for
    return r.a.smoke_epochs if r.a.rehearse else recipe_for(job.model, job.recipe).epochs

def predict(r:Run, job:Job, speed:dict) -> float:
    "Seconds a record should take, from the smoke's images/s (its per-image pipeline's too, for `course_script`)"
    epochs, n = _epochs(r, job), r.a.smoke_subset if r.a.rehearse else 50_000
    per_img = 1 / speed[job.model] + (1 / speed['convmixer-course_script'] if job.recipe == 'course_script' else 0)
    return (epochs * n * per_img + r.a.overhead) * r.factor            # corrected by the records that have ended

def start(r:Run, job:Job, speed:dict):
    "Start `job`'s record if its predicted time fits before the deadline"
    out = r.results / job.name
    if (out / 'summary.json').exists(): return r.record(job, 'held', note='results/ already holds this record')
    est = predict(r, job, speed)
    if est > r.left() * r.a.slack:
        r.say(f'{job.name}: not started, it needs about {est:.0f} s and {r.left():.0f} s are left')
        return r.record(job, 'skipped', predicted_s=round(est))
    log = r.work / 'logs' / f'{job.name}.log'
    r.say(f'{job.name}: started ({job.why}), about {est:.0f} s predicted: {" ".join(eva_train_cmd(r, job, out))}')
    r.running[job.name] = dict(job=job, p=sh(eva_train_cmd(r, job, out), log, os.environ | {'TQDM_DISABLE': '1'}),
                               t=r.now(), log=log, out=out, est=est, shared=len(r.running) + 1)

def poll(r:Run):
    "Finish the records that ended, stop those whose epochs say they end after the deadline; note the sharing"
    for name, j in list(r.running.items()):
        j['shared'] = max(j['shared'], len(r.running))
        rc, took = j['p'].poll(), r.now() - j['t']
        ts = epoch_times(j['log'])
        if rc is None:
            if not ts: continue
            rest = ts[-1] * (_epochs(r, j['job']) - len(ts)) + r.a.overhead / 2   # seconds it still needs
            if rest > r.left():
                stop(j['p']); del r.running[name]
                r.say(f'{name}: stopped after {len(ts)} epochs: it would end at {r.now() + rest:.0f} s, past the deadline')
                r.record(j['job'], 'stopped', epochs_done=len(ts), s_per_epoch=ts[-1], projected_end_s=round(r.now() + rest))
                r.archive(j['log'], f"logs/{name}.log")
            continue
        del r.running[name]
        if rc != 0:
            r.say(f"{name}: FAILED (exit {rc}) after {took:.0f} s; its log's end:\n" + j['log'].read_text(errors='replace')[-3000:])
            r.record(j['job'], 'failed', rc=rc, took_s=round(took)); r.archive(j['log'], f"logs/{name}.log")
            r.problems.append(f'{name} failed'); continue
        s_path = j['out'] / 'summary.json'
        s = json.loads(s_path.read_text()) | dict(concurrent_runs=j['shared'])
        if len(ts) != s['epochs']: r.problems.append(f'{name}: its log shows {len(ts)} epoch lines for {s["epochs"]} epochs: '
                                                      f'EPOCH_LINE no longer reads epoch_line(), so no run can be stopped in time')
        s_path.write_text(json.dumps(s, indent=2))
        kept = shrink_weights(j['out'], r.a.weights_mb)
        r.ratios.append(took / (j['est'] / r.factor)); r.factor = sorted(r.ratios)[len(r.ratios) // 2]
        r.say(f"{name}: {s['test_acc']:.2%} test after {s['epochs']} epochs, {took:.0f} s in all ({s['sec_per_epoch']:.1f} s/epoch, "
              f"{s['precision']}, {s['device']}, {j['shared']} run(s) sharing the device); weights {kept}")
        r.record(j['job'], 'done', test_acc=s['test_acc'], took_s=round(took), predicted_s=round(j['est']),
                 sec_per_epoch=s['sec_per_epoch'], concurrent_runs=j['shared'], weights=kept)
        r.archive(j['out'], f'results/{name}'); r.archive(j['log'], f"logs/{name}.log")

def alone(r:Run, job:Job):
    "The benchmark or the sync count, with the device to itself, cut at the deadline"
    if job.kind == 'bench':
        size = ['--steps', '2', '--warmup', '1', '--bs', str(r.a.smoke_bs)] if r.a.rehearse else ['--steps', str(r.a.bench_steps), '--repeats', '3']
        cmd = [sys.executable, str(REPO / 'benchmarks' / 'train_speed.py'), '--baseline', 'course', '--data', r.a.data,
               '--models', *SPEED_MODELS, *size, *(['--device', r.a.device] if r.a.device else []), *job.args]
    else: cmd = [sys.executable, __file__, '--sync-count', job.model, '--data', r.a.data, *(['--device', r.a.device] if r.a.device else []),
                 *(['--rehearse'] if r.a.rehearse else [])]
    limit = r.left() if not r.a.rehearse else 600
    if limit < r.a.min_alone: return r.say(f'{job.name}: not started, {r.left():.0f} s left') or r.record(job, 'skipped')
    log, t = r.work / 'logs' / f'{job.name}.log', r.now()
    r.say(f'{job.name}: started ({job.why}), at most {limit:.0f} s: {" ".join(cmd[1:])}')
    p = sh(cmd, log)
    try: rc = p.wait(limit)
    except subprocess.TimeoutExpired: stop(p); rc = 'cut at the deadline'
    r.say(f'{job.name}: {"done" if rc == 0 else f"ended ({rc})"} in {r.now() - t:.0f} s; its output:\n' + log.read_text(errors='replace')[-6000:])
    r.record(job, 'done' if rc == 0 else 'cut' if isinstance(rc, str) else 'failed', took_s=round(r.now() - t))
    if rc != 0 and not isinstance(rc, str): r.problems.append(f'{job.name} failed')
    r.archive(log, f'logs/{job.name}.log')

def sync_count(a):
    "Host synchronisations per training step of `a.sync_count`'s model: `torch.cuda.set_sync_debug_mode('warn')` counted over steps"
    import torch
    from dataclasses import replace
    from eva_attention.learner import Callback, CancelFit
    from eva_attention.run import RunConfig, make_learner
    from eva_attention.models import get_model, recipe_for
    from eva_attention.cli import get_data
    class Count(Callback):
        "Mark where the warnings of the timed steps begin and end in `caught`, then stop the fit"
        order = 100
        def __init__(self, caught, warmup, steps): self.caught, self.warmup, self.steps, self.k = caught, warmup, steps, 0
        def after_step(self, learn):
            self.k += 1
            if self.k == self.warmup: self.first = len(self.caught)
            if self.k == self.warmup + self.steps: self.last = len(self.caught); raise CancelFit()
    d = get_data(a.data, a.smoke_subset if a.rehearse else None)
    name = a.sync_count
    recipe = replace(recipe_for(name), bs=a.smoke_bs) if a.rehearse else recipe_for(name)
    learn = make_learner(get_model(name), d, recipe, RunConfig(model=name, device=a.device, quiet=True))
    cuda = learn.rt.device.type == 'cuda'
    if cuda: torch.cuda.set_sync_debug_mode('warn')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        counter = Count(caught, 3, 2 if a.rehearse else 20)
        learn.fit(1, cbs=[counter])
    if cuda: torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught[counter.first:counter.last] if 'synchroniz' in str(w.message)]
    where = Counter(f'{Path(w.filename).name}:{w.lineno}' for w in syncs)
    print(f'{name} on {learn.rt}: {len(syncs)} host synchronisations in {counter.steps} training steps '
          f'({len(syncs) / counter.steps:.2f} per step){"" if cuda else " (not CUDA: set_sync_debug_mode counts only there)"}')
    for k, v in where.most_common(): print(f'  {v:4d}  {k}')

def main(a):
    if not shutil.which('eva_train'): raise SystemExit('gpu_run: no eva_train on PATH: install the package (tools/gpu_run.sh does)')
    r = Run(a)
    import torch
    from eva_attention.core import get_runtime
    from eva_attention.data import load_cifar10
    rt = get_runtime(a.device)
    r.say(f'device {rt.device_name}; torch {torch.__version__}, CUDA {torch.version.cuda}; python {sys.version.split()[0]}; '
          f'--precision auto picks {rt.precision}, {rt.memory_format}; deadline {a.deadline:.0f} s; {a.parallel} records at a time')
    d = load_cifar10(a.data)                                            # decoded once; every run reads the cache
    r.say(f'data: {len(d.y_train):,} train / {len(d.y_test):,} test images ({a.data})')
    speed = smoke(r)
    for job in (j for j in JOBS if not a.only or j.name in a.only):
        if job.kind != 'train':
            while r.running: poll(r); time.sleep(1)
            alone(r, job); continue
        while len(r.running) >= a.parallel: poll(r); time.sleep(1)
        start(r, job, speed)
    while r.running: poll(r); time.sleep(1)
    done = [o for o in r.outcome if o['status'] == 'done']
    r.say(f'end: {len(done)} of {len(r.outcome)} jobs done; ' + '; '.join(f"{o['job']} {o['status']}" for o in r.outcome))
    if r.problems: raise SystemExit('gpu_run: ' + '; '.join(r.problems))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', required=True, help='CIFAR-10 folder (the unpacked JPEG copy)')
    ap.add_argument('--out', default='gpu_out', help='what comes back: the log, gpu_run.json, records-N.tar')
    ap.add_argument('--results', default=None, help='where records are written (default: results/, or a scratch folder with --rehearse)')
    ap.add_argument('--work', default=None, help='scratch folder for smoke runs and logs')
    ap.add_argument('--device', default=None, help='cuda or cpu (default: the best there is)')
    ap.add_argument('--deadline', type=float, default=510., help='seconds from the start by which every job must end')
    ap.add_argument('--parallel', type=int, default=None, help='records at a time (default: 3 on a GPU, 1 on a CPU)')
    ap.add_argument('--slack', type=float, default=1.25, help='start a record when its prediction is under slack x the time left')
    ap.add_argument('--overhead', type=float, default=25., help="seconds a record spends outside its epochs (start, data, report)")
    ap.add_argument('--min-alone', type=float, default=40., help='seconds the benchmark or the sync count needs at least')
    ap.add_argument('--bench-steps', type=int, default=20)
    ap.add_argument('--weights-mb', type=float, default=5., help='records keep weights up to this size (fp16 if fp32 is larger)')
    ap.add_argument('--tar-mb', type=float, default=12.)
    ap.add_argument('--only', nargs='*', help='run only these jobs (names as in the log)')
    ap.add_argument('--rehearse', action='store_true', help='tiny sizes on whatever device: the same path end to end')
    ap.add_argument('--smoke-subset', type=int, default=2560); ap.add_argument('--smoke-epochs', type=int, default=2)
    ap.add_argument('--smoke-bs', type=int, default=256)
    ap.add_argument('--sync-count', default=None, help='(internal) count the host syncs of this model, then exit')
    a = ap.parse_args()
    if a.rehearse: a.smoke_subset, a.smoke_epochs, a.smoke_bs = 512, 1, 64
    if a.sync_count: sys.exit(sync_count(a))
    a.work = a.work or tempfile.mkdtemp(prefix='eva_gpu_run_')             # smoke runs and logs: fresh each call
    a.results = a.results or (str(Path(a.work) / 'results') if a.rehearse else str(REPO / 'results'))
    if a.rehearse and a.deadline == ap.get_default('deadline'): a.deadline = 3600.
    import torch
    a.parallel = a.parallel or (3 if torch.cuda.is_available() and a.device != 'cpu' else 1)
    os.chdir(REPO)                                                      # records name relative paths: results/<name>, the data's
    main(a)
