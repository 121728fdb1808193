#!/usr/bin/env bash
# One prepared GPU run: a bare GPU machine set up from what travels with the working tree, then benchmarks/gpu_run.py.
#
#   bash tools/gpu_run.sh --pack        here, with PyPI: the wheels the GPU image lacks into .whl/, the JPEG copy of
#                                       CIFAR-10 into .data/cifar10-jpg.tgz (from $EVA_JPG, default ../shared/data/cifar10-jpg)
#   bash tools/gpu_run.sh [options]     on the GPU machine (the device tool: carry .whl and .data); its options go to
#                                       gpu_run.py; results come back under $OUT
#   bash tools/gpu_run.sh --rehearse    on a CPU: a fresh Python 3.12 venv holding only torch 2.11 / torchvision 0.26 and
#                                       the packages the GPU image has, our wheels installed as on the GPU, then
#                                       gpu_run.py --rehearse (tiny sizes, the same path end to end)
#   bash tools/gpu_run.sh --rehearse-here   the same rehearsal in the current Python environment (CI's cheap form)
set -euo pipefail
export GPU_RUN_T0=${GPU_RUN_T0:-$(date +%s.%N)}                          # the deadline counts from here, install included
cd "$(dirname "$0")/.."
export NO_ALBUMENTATIONS_UPDATE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1

# What the GPU image (Python 3.12, torch 2.11, torchvision 0.26, numpy, pandas, matplotlib, opencv, scipy, scikit-learn,
# tqdm, einops, tabulate, pyyaml, pillow) lacks: our runtime requirements that are not there, and theirs. One version each.
WHEELS="albumentations==2.0.8 albucore==0.0.24 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
typing-inspection==0.4.5 typing-extensions==4.16.0 stringzilla==5.3.2 simsimd==6.5.16 fastcore==1.14.5 ttach==0.0.3"
SDISTS="grad-cam==1.5.7"                                                  # pure Python, published as a source archive only
# The image's own packages, for the rehearsal's fresh venv (PyPI's, near the image's versions)
IMAGE_PKGS="numpy<2.6 pandas matplotlib opencv-python-headless<4.13 scipy scikit-learn tqdm einops tabulate pyyaml pillow
setuptools wheel typing-extensions packaging"
TORCH_WHEELS=${TORCH_WHEELS:-/tmp/eva-torch-2.11-cp312}                  # torch 2.11 / torchvision 0.26 for Python 3.12
PLAT="--python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux_2_28_x86_64
--platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"

install_ours() {  # $1: python. The carried wheels and this checkout into /tmp/eva_site, without an index or dependencies
  rm -rf /tmp/eva_site
  "$1" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --target /tmp/eva_site .whl/*.whl .
  export PYTHONPATH=/tmp/eva_site PATH=/tmp/eva_site/bin:$PATH
  "$1" -c "import albumentations, fastcore, pytorch_grad_cam, eva_attention.cli; print('installed: eva_attention', eva_attention.__version__, '| albumentations', albumentations.__version__, '| fastcore', fastcore.__version__)"
}

data_dir() {  # $1: fake allowed. Prints the data folder: .data/cifar10-jpg.tgz unpacked into data/ (ignored by git), or
              # for a rehearsal without it (CI), a small made-up image folder of CIFAR-10's classes
  if [ -d data/cifar10-jpg/train ] || { [ -f .data/cifar10-jpg.tgz ] && mkdir -p data && tar xzf .data/cifar10-jpg.tgz -C data; }; then
    echo data/cifar10-jpg
  elif [ "$1" = fake ]; then
    [ -d data/fake-cifar/train ] || python -c "from eva_attention.data import CLASSES, write_folder; write_folder('data/fake-cifar', CLASSES, (60, 12))"
    echo data/fake-cifar
  else echo "gpu_run: no .data/cifar10-jpg.tgz: run 'bash tools/gpu_run.sh --pack' here and carry .data" >&2; exit 1; fi
}

case "${1:-}" in
  --pack)
    rm -rf .whl && mkdir -p .whl .data
    python3 -m pip download -q --no-deps $PLAT -d .whl $WHEELS
    python3 -m pip wheel -q --no-deps -w .whl $SDISTS                     # built here into a py3-none-any wheel
    [ -f .data/cifar10-jpg.tgz ] || tar czf .data/cifar10-jpg.tgz -C "$(dirname "${EVA_JPG:-../shared/data/cifar10-jpg}")" cifar10-jpg
    du -sh .whl .data; ls .whl ;;
  --rehearse)
    shift
    py=""; for c in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
      if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then py=$c; break; fi; done
    [ -n "$py" ] || { echo "gpu_run: the rehearsal needs Python 3.12 (the GPU image's) as python3.12"; exit 1; }
    if [ ! -f "$TORCH_WHEELS/.ok" ]; then                               # torch 2.11 / torchvision 0.26 and theirs, once
      python3 -m pip download -q $PLAT --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_12_x86_64 \
        --platform manylinux2010_x86_64 --platform manylinux_2_18_x86_64 --platform manylinux_2_25_x86_64 \
        -d "$TORCH_WHEELS" torch==2.11.0 torchvision==0.26.0 && touch "$TORCH_WHEELS/.ok"
    fi
    venv=$(mktemp -d /tmp/eva-gpu-rehearse-XXXX)
    "$py" -m venv "$venv"; . "$venv/bin/activate"
    pip install -q --no-index --find-links "$TORCH_WHEELS" torch==2.11.0 torchvision==0.26.0
    pip install -q $IMAGE_PKGS
    install_ours python
    data=$(data_dir fake)
    python benchmarks/gpu_run.py --data "$data" --rehearse --out "${OUT:-/tmp/eva-gpu-rehearse-out}" --device cpu "$@"
    rm -rf "$venv" ;;
  --rehearse-here)
    shift; data=$(data_dir fake)
    python benchmarks/gpu_run.py --data "$data" --rehearse --out "${OUT:-$(mktemp -d)}" --device cpu "$@" ;;
  *)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    install_ours python3
    data=$(data_dir real)
    python3 benchmarks/gpu_run.py --data "$data" --out "${OUT:-gpu_out}" "$@" ;;
esac
