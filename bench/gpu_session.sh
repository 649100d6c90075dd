#!/usr/bin/env bash
# The GPU checks of one lent-machine session (an H100 or H200 with its own torch), run
# from the repo root:  bash bench/gpu_session.sh OUTDIR   (at most ~11.5 min: the sum
# of the limits below)
# Data: BENCH_FASHION_DIR / BENCH_MNIST_DIR (the IDX .gz files). Each step has its own
# time limit, so one slow step cannot eat the others' time; logs and JSON go to OUTDIR.
set -u
out=${1:-/tmp/gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
py=${PYTHON:-python3}
step() {  # step NAME SECONDS CMD...
    local name=$1 limit=$2; shift 2
    echo "=== $name (limit ${limit}s) $(date +%T)"
    local t0=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "=== $name rc=$rc $((SECONDS - t0))s"
    tail -n "${TAILN:-25}" "$out/$name.log"
}
step env 30 bash -c "nvidia-smi -L; $py -c 'import torch, torchvision, PIL, numpy, safetensors; print(torch.__version__, torchvision.__version__, torch.cuda.get_device_name(0), torch.cuda.is_bf16_supported())'"
step cuda-tests 100 $py -m pytest -q -p no:cacheprovider tests/core/test_cuda.py tests/core/test_training.py tests/core/test_devices.py tests/core/test_modelio.py
step cli 80 bash -c "$py -m app info && $py -m app train --dataset mnist --data-dir $BENCH_MNIST_DIR --device cuda --epochs 3 --eval-test --out /tmp/gpu-m.safetensors && $py -m app evaluate --model /tmp/gpu-m.safetensors --dataset mnist --data-dir $BENCH_MNIST_DIR"
# torchrun + DDP over nccl (one process per GPU, SyncBatchNorm), then the gloo tests
# (2 CPU processes: parity with 1 process, Ctrl-C, resume with another process count).
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l); [ "$ngpu" -ge 1 ] || ngpu=1
step ddp 90 bash -c "$py -m torch.distributed.run --standalone --nproc-per-node $ngpu -m app train --dataset mnist --data-dir $BENCH_MNIST_DIR --device cuda --epochs 3 --eval-test --out /tmp/gpu-ddp.safetensors && $py -m pytest -q -p no:cacheprovider tests/test_distributed.py"
TAILN=14 step sweep 120 $py bench/recipe_sweep.py --device cuda ${SWEEP:-}
step tta-fashion 100 $py bench/time_to_accuracy.py --which fashion --recipes seeds ours --device cuda --budget-s 80 --seeds-epochs 5
step tta-mnist 55 $py bench/time_to_accuracy.py --which mnist5k --recipes ours seeds --device cuda --budget-s 35 --seeds-epochs 10
# Fewer, larger steps (lr scaled by sqrt of the batch ratio): the per-step overhead paid 4x less often.
step tta-b256 60 $py bench/time_to_accuracy.py --which mnist5k fashion --recipes ours --device cuda --batch-size 256 --budget-s 20
step throughput 65 $py bench/train_throughput.py --device cuda --arch resnet-mnist resnet18 --rounds 3 --steps 40
cp bench/results/*.json "$out/" 2>/dev/null
echo "done $(date +%T)"
