"nbdev's documentation processing of one notebook, as `nbdev_docs` does it before Quarto, for the tools beside this file."
import json, os, warnings
from pathlib import Path
from nbformat import reads
from execnb.nbio import read_nb, nb2dict
from fastcore.xtras import working_directory
from nbdev.processors import FilterDefaults

def process_nb(fn):
    "The processed notebook `fn` (nbformat) and the warnings nbdev gave on the way (e.g. imports mixed with code)."
    fn = Path(fn)
    nb = read_nb(fn)
    os.environ['IN_TEST'] = '1'
    with warnings.catch_warnings(record=True) as ws, working_directory(fn.parent):
        warnings.simplefilter('always')
        FilterDefaults()(nb)
    return reads(json.dumps(nb2dict(nb)), as_version=4), [str(w.message) for w in ws if w.category is UserWarning]
