"""Check the course site as far as this machine can without Quarto.

1. nbdev's documentation processing (the processors `nbdev_docs` runs before Quarto) succeeds for every notebook
   without warnings, each page has a title, and no nbdev directive is left in what a reader would see. (The processing
   runs every cell that imports something: a cell mixing imports with other code, say a training run, would run
   at every docs build; nbdev warns, and here that fails the page.)
2. Each processed page is rendered to an HTML preview (nbconvert) and opened in headless Chromium: the page loads,
   shows its title, every PNG figure the notebook stores, and no error output.
3. A screenshot of each page is saved (default `_screenshots/`) for a person to look at.
4. Every link to a page of ours, in README.md and in every page, names a page the site will have: nbdev names a page
   after its notebook without the number prefix (`07_results.ipynb` -> `results.html`), so a link to
   `.../07_results.html` is a 404 there; a link to a notebook (`07_results.ipynb`) must name one that exists.
5. Every cell that draws a figure stores it: the site shows stored outputs only, so a cell that calls drawing code
   (matplotlib, or a function of ours that draws) at its top level and stores no PNG fails, and so does a stored
   `<Figure size ...>` text (a figure displayed without the inline backend). A cell that closes its figure on
   purpose (`plt.close` at its top level) is exempt.

Run: `python tools/check_docs.py` (needs Debian's `chromium`); `--no-browser` does steps 1 and 2 without Chromium."""
import argparse, ast, copy, html, re, shutil, subprocess, sys, tempfile
import yaml
from pathlib import Path
from nbconvert import HTMLExporter
import nbformat
from nbformat import v4
from nbdev.config import get_config
from nbdev.doclinks import _nbpath2html
from nbproc import process_nb

# nbdev's own directives: the processing must consume them all (Quarto's, like `echo: false`, may stay)
NBDEV_DIRECTIVES = re.compile(r'^#\|\s*(export|exports|exporti|exec_doc|hide|hide_line|default_exp|slow|gpu|notest|filter_stream)\b', re.M)
ERROR_TEXT = re.compile(r'Traceback \(most recent call last\)|\w+Error: ')
CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--hide-scrollbars',
                '--disable-background-networking', '--disable-component-update', '--disable-sync', '--mute-audio']

def page_problems(nb):
    "What is wrong with one processed notebook `nb`, before the browser: title, leftover directives, error outputs."
    probs = []
    fm = frontmatter(nb)
    if not fm.get('title'): probs.append('no title (the first markdown cell must be `# Title` then `> subtitle`)')
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code': continue
        if m := NBDEV_DIRECTIVES.search(c.source): probs.append(f'cell {i}: directive `{m.group(0)}` left in the page')
        for o in c.get('outputs', []):
            if o.output_type == 'error': probs.append(f'cell {i}: stored error output {o.ename}: {o.evalue}')
            elif o.output_type == 'stream' and o.name == 'stderr' and 'Traceback' in o.text:
                probs.append(f'cell {i}: stored traceback on stderr')
    return probs, fm.get('title')

def frontmatter(nb):
    "The YAML frontmatter nbdev makes from `# title` and `> description` (a raw first cell)."
    c = nb.cells[0] if nb.cells else None
    return yaml.safe_load(c.source.strip().strip('-')) or {} if c and c.cell_type == 'raw' else {}

# calls that draw: matplotlib's, and core's `image_grid`; functions defined in the notebooks that call one are added
DRAWING = {'subplots', 'figure', 'imshow', 'plot', 'bar', 'barh', 'hist', 'scatter', 'matshow', 'image_grid'}

def _parse(src):
    "The AST of a cell, without its directives and IPython lines; None if it does not parse"
    try: return ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!', '#|'))))
    except SyntaxError: return None

def _called(node):
    "Names of the functions and methods that `node` calls, outside any function or class it defines"
    out, todo = set(), [node]
    while todo:
        n = todo.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)) and n is not node: continue
        if isinstance(n, ast.Call):
            f = n.func
            out.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, 'id', None))
        todo.extend(ast.iter_child_nodes(n))
    return out - {None}

def _closure(calls, seed):
    "`seed`, plus every function in `calls` {name: names it calls} that calls one of them (to a fixed point)"
    out, grew = set(seed), True
    while grew:
        new = {n for n, c in calls.items() if c & out} - out
        out |= new; grew = bool(new)
    return out

def drawing_functions(trees):
    "DRAWING, plus every function defined in `trees` whose body calls a drawing function, less those that save their figures to files"
    defs = [n for t in trees for n in ast.walk(t) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    calls = {d.name: set().union(*(_called(s) for s in d.body)) for d in defs}
    writers = _closure(calls, {'savefig'}) - {'savefig'}                    # `write_report`: figures go to files
    return _closure(calls, DRAWING) - writers

def figure_problems(nb, drawers):
    "Cells that draw at their top level (or show `<Figure size ...>` text) but store no PNG"
    probs = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != 'code': continue
        outs = c.get('outputs', [])
        has_png = any('image/png' in o.get('data', {}) for o in outs)
        fig_text = any(str(o.get('data', {}).get('text/plain', '')).startswith('<Figure size') for o in outs)
        tree = _parse(c.source)
        calls = _called(tree) if tree else set()
        draws = bool(calls & drawers) and 'close' not in calls
        if not has_png and (draws or fig_text):
            probs.append(f'cell {i}: draws a figure ({", ".join(sorted(calls & drawers)) or "<Figure> text"}) but stores no image')
    return probs

def n_figures(nb): return sum('image/png' in o.get('data', {}) for c in nb.cells if c.cell_type == 'code' for o in c.outputs)

def to_html(nb, title):
    "An HTML preview of a processed notebook, with what Quarto would hide left out."
    nb = copy.deepcopy(nb)
    desc = frontmatter(nb).get('description')
    if nb.cells and nb.cells[0].cell_type == 'raw': nb.cells.pop(0)
    for c in nb.cells:
        if c.cell_type == 'markdown': c.source = re.sub(r'\]\(([^)]*)\)\{[^}]*\}', r'](\1)', c.source)  # Quarto link attributes
        if c.cell_type != 'code': continue
        opts = dict(re.findall(r'^#\|\s*([\w-]+):\s*(.*)$', c.source, re.M))
        c.source = re.sub(r'^#\|.*\n?', '', c.source, flags=re.M).strip()
        if opts.get('echo') == 'false': c.metadata['jupyter'] = {'source_hidden': True}; c.source = ''
        if opts.get('output') == 'false': c.outputs = []
    nb.cells = [c for c in nb.cells if c.cell_type != 'code' or c.source or c.outputs]  # Quarto shows nothing for them
    head = f'# {title}\n\n' + (f'> {desc}\n' if desc else '')
    nb.cells.insert(0, v4.new_markdown_cell(head))
    nb.metadata['title'] = title
    body, _ = HTMLExporter(template_name='classic', exclude_input_prompt=True, exclude_output_prompt=True).from_notebook_node(nb)
    return body

def read_cells(fn): return nbformat.read(fn, as_version=4).cells

def chromium(): return shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')

def browse(page:Path, shot:Path, exe, height=6000):
    "Open `page` in headless Chromium: return its DOM after load, and save a screenshot to `shot`."
    with tempfile.TemporaryDirectory() as prof:
        flags = CHROME_FLAGS + [f'--user-data-dir={prof}', '--virtual-time-budget=3000']
        dom = subprocess.run([exe, *flags, '--dump-dom', page.as_uri()], capture_output=True, text=True, timeout=120).stdout
        subprocess.run([exe, *flags, f'--screenshot={shot}', f'--window-size=1280,{height}', page.as_uri()],
                       capture_output=True, timeout=120)
    return dom

def browser_problems(dom, title, n_png):
    probs = []
    if not dom.strip(): return ['the page did not load (empty DOM)']
    got = re.search(r'<title>(.*?)</title>', dom, re.S)
    if not got or html.unescape(got.group(1)).strip() != title: probs.append(f'<title> is {got and got.group(1)!r}, not {title!r}')
    if f'>{html.escape(title)}<' not in dom and f'>{title}<' not in dom: probs.append('the title is not shown on the page')
    shown = len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom))
    if shown != n_png: probs.append(f'{shown} PNG figures shown, the notebook stores {n_png}')
    text = re.sub(r'<(script|style)\b.*?</\1>', '', dom, flags=re.S)
    if ERROR_TEXT.search(re.sub(r'<[^>]+>', '', text)) and '"output_error"' in text: probs.append('error text on the page')
    if 'output_error' in text: probs.append('an error output is shown')
    return probs

LINK = re.compile(r'\]\(([^)\s]+)\)|href="([^"]+)"')

def site_pages(nbs_path):
    "The pages the site will have: nbdev's `output-file` for each notebook (`07_results.ipynb` -> `results.html`)"
    return {_nbpath2html(fn).name for fn in Path(nbs_path).glob('*.ipynb')}

def link_problems(text, pages, notebooks, site):
    "Links in `text` to a page of ours (`{site}/x.html`, `x.html`, `x.ipynb`) that the site will not have"
    probs = []
    for m in LINK.finditer(text):
        url = (m.group(1) or m.group(2)).split('#')[0]
        if url.startswith(site + '/'): url = url[len(site) + 1:]
        elif re.match(r'[a-z]+:', url): continue                     # another site, or mailto:
        if url.endswith('.ipynb') and '/' not in url and url not in notebooks: probs.append(f'link to {url}: no such notebook')
        if url.endswith('.html') and '/' not in url and url not in pages:
            fix = _nbpath2html(Path(url)).name
            probs.append(f'link to {url}: the site has no such page' + (f' (nbdev names it {fix})' if fix in pages else ''))
    return probs

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default='_screenshots', help='where the HTML previews and screenshots go')
    ap.add_argument('--no-browser', action='store_true', help='skip Chromium (processing and HTML only)')
    args = ap.parse_args()
    cfg = get_config()
    out = cfg.config_path/args.out; out.mkdir(exist_ok=True)
    exe = None if args.no_browser else chromium()
    if not args.no_browser and not exe: sys.exit('chromium not found: `apt-get install chromium` (or pass --no-browser)')
    failed = 0
    pages, notebooks = site_pages(cfg.nbs_path), {fn.name for fn in cfg.nbs_path.glob('*.ipynb')}
    site = cfg.doc_host + cfg.doc_baseurl
    readme = cfg.config_path/'README.md'
    if readme.exists():
        probs = link_problems(readme.read_text(), pages, notebooks, site)
        failed += bool(probs)
        print(f'{"FAIL" if probs else "ok  "} README.md: links' + ''.join(f'\n     - {p}' for p in probs))
    drawers = drawing_functions(t for fn in sorted(cfg.nbs_path.glob('*.ipynb'))
                                for c in read_cells(fn) if c.cell_type == 'code' and (t := _parse(c.source)))
    for fn in sorted(cfg.nbs_path.glob('*.ipynb')):
        try: nb, warns = process_nb(fn)
        except Exception as e:
            failed += 1; print(f'FAIL {fn.name}: nbdev processing failed: {e}'); continue
        probs, title = page_problems(nb)
        probs += figure_problems(nbformat.read(fn, as_version=4), drawers)
        probs += link_problems('\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown'), pages, notebooks, site)
        probs += [f'nbdev: {w.splitlines()[0]} (cell: {w.split("---")[1].strip().splitlines()[0]!r}...)' if '---' in w
                  else f'nbdev: {w}' for w in warns]
        n_png = n_figures(nb)
        if title:
            page = out/f'{fn.stem}.html'
            page.write_text(to_html(nb, title))
            if exe: probs += browser_problems(browse(page, out/f'{fn.stem}.png', exe), title, n_png)
        failed += bool(probs)
        print(f'{"FAIL" if probs else "ok  "} {fn.name}: {title!r}, {n_png} figures' + ''.join(f'\n     - {p}' for p in probs))
    print(f'docs: {len(notebooks) + readme.exists() - failed} passed, {failed} failed')
    if failed: sys.exit(1)

if __name__ == '__main__': main()
