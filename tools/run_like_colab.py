"""Run notebooks top to bottom as a student would in Colab: in whatever environment this Python is (for the check,
a fresh venv holding only `pip install` of the package plus Colab's given tools: a kernel, torchinfo), without nbdev.

Cells flagged with a test flag that is not asked for (`#| slow`, `#| gpu`, `#| notest`, `#| eval: false`) and the
final `nbdev_export()` cell are skipped, as `nbdev_test` skips them. Usage: `python tools/run_like_colab.py nbs/*.ipynb`
(`--flags slow` runs the slow cells too)."""
import argparse, re, sys, time
from pathlib import Path
import nbformat
from nbclient import NotebookClient

def skipped(src, flags):
    direc = set(re.findall(r'^#\|\s*([\w-]+)', src, re.M))
    if re.search(r'^#\|\s*eval:\s*false', src, re.M) or 'nbdev_export(' in src: return True
    return bool(direc & ({'slow', 'gpu', 'notest'} - set(flags)))

def run(fn, flags=()):
    nb = nbformat.read(fn, as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type != 'code' or not skipped(c.source, flags)]
    NotebookClient(nb, timeout=1200, kernel_name='python3', resources={'metadata': {'path': str(Path(fn).parent)}}).execute()

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+')
    ap.add_argument('--flags', default='', help='space-separated test flags whose cells run too')
    args = ap.parse_args()
    failed = []
    for fn in args.notebooks:
        t = time.time()
        try: run(fn, args.flags.split()); print(f'ok   {fn} ({time.time()-t:.0f}s)')
        except Exception as e: failed.append(fn); print(f'FAIL {fn}: {str(e)[-2000:]}')
    print(f'{len(args.notebooks)-len(failed)} passed, {len(failed)} failed')
    sys.exit(bool(failed))
