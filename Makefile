# Set-up and everyday commands. `make run` and `make test` work on a fresh machine:
# they create .venv and install everything (torch from the local wheel cache here).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MNIST  ?= ../shared/data/mnist

.PHONY: run test lint bench model evaluate clean

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
	$(PY) -m app train --dataset mnist --data-dir $(MNIST) --arch resnet-mnist --epochs 30 \
	  --batch-size 128 --lr 0.2 --seed 0 --eval-test --out model_weights/mnist-resnet.safetensors

evaluate: $(STAMP)
	$(PY) -m app evaluate --dataset mnist --data-dir $(MNIST)

clean:
	rm -rf build dist .pytest_cache
