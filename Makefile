# Set-up and everyday commands. `make run` and `make test` work on a fresh machine:
# they create .venv and install everything (torch from the local wheel cache here).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MNIST  ?= ../shared/data/mnist

.PHONY: run test lint bench model model-oe evaluate clean bundle bundle-test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e ".[dev,bundle]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m app

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check app tests bench

# The shipped digit model: trained on the 5k MNIST training digits only (validation is
# carved out of them); the 10k test split is only evaluated, after training.
model: $(STAMP)
	$(PY) -m app train --dataset mnist --data-dir $(MNIST) --recipe digits-40 --arch resnet-mnist --epochs 40 \
	  --batch-size 64 --lr 0.1 --seed 0 --eval-test --out model_weights/mnist-resnet.safetensors
	$(PY) -m app calibrate --model model_weights/mnist-resnet.safetensors --data-dir $(MNIST) --eval-test

# The same recipe with outlier exposure (letters in the pool): flags 89.4% of non-digits
# at 99.29% test accuracy (README, "How sure is it?"); written beside the shipped model,
# not over it. About 15 min on 2 cores.
model-oe: $(STAMP)
	$(PY) -m app train --dataset mnist --data-dir $(MNIST) --recipe digits-40 --arch resnet-mnist --epochs 40 \
	  --batch-size 64 --lr 0.1 --seed 0 --eval-test --outlier-exposure 0.5 --out model_weights/mnist-resnet-oe.safetensors
	$(PY) -m app calibrate --model model_weights/mnist-resnet-oe.safetensors --data-dir $(MNIST) --eval-test

evaluate: $(STAMP)
	$(PY) -m app evaluate --dataset mnist --data-dir $(MNIST)

# Benchmarks (bench/, docs/performance.md): not tests, CI does not run them. Each script
# prints a table and writes bench/results/NAME.json. Time-to-accuracy trains four
# models (about an hour on 2 cores); `make bench BENCH_TTA=` skips it.
BENCH_TTA ?= --budget-s 900
bench: $(STAMP)
	$(PY) bench/train_throughput.py
	$(PY) bench/inference_latency.py
	$(PY) bench/memory.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/gui_responsiveness.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/startup.py --source
	if [ -x dist/resnet-studio/resnet-studio ]; then QT_QPA_PLATFORM=offscreen $(PY) bench/startup.py; fi
	$(if $(BENCH_TTA),$(PY) bench/time_to_accuracy.py $(BENCH_TTA))

# The packaged app (docs/packaging.md): the folder dist/resnet-studio/ holding the
# executable `resnet-studio`, built from this venv's torch. RESNET_STUDIO_ONEFILE=1 builds
# one self-extracting file dist/onefile/resnet-studio instead; RESNET_STUDIO_SLIM=0 keeps
# the GPU libraries. `bundle-test` runs the built app (--self-test, classify) and fails
# on any error.
BUNDLE_DIST := $(if $(filter 1,$(RESNET_STUDIO_ONEFILE)),dist/onefile,dist)

bundle: $(STAMP)
	$(PY) -m PyInstaller --noconfirm --log-level WARN --distpath $(BUNDLE_DIST) \
	  --workpath build build_spec/resnet-studio.spec
	du -sh $(BUNDLE_DIST)/resnet-studio

bundle-test: bundle
	$(PY) build_spec/check_bundle.py $(BUNDLE_DIST)/resnet-studio$(if $(filter 1,$(RESNET_STUDIO_ONEFILE)),,/resnet-studio)

clean:
	rm -rf build dist .pytest_cache
