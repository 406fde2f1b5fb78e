# One entry point for a fresh machine: `make demo` and `make test` build .venv/ themselves.
PY := .venv/bin/python
STAMP := .venv/.installed
TEST_STAMP := .venv/.installed-test

.PHONY: demo test venv clean gpu-check

venv: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	# The CPU build first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# setuptools announces every editable install with a boxed notice that -q does not hide.
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	.venv/bin/splatcam demo

# The tests also drive the fitter with dlib's 68 points on a real video, so they install the
# dlib extra (a wheel and its ~100 MB predictor package), which the demo does not need.
$(TEST_STAMP): $(STAMP)
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q -e ".[test,dlib]"
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	$(PY) -m pytest -q

# The GPU tests and GPU benchmark rows, one JSON (runtime/gpu_check.py). Only with CUDA does it
# install the gpu extra (gsplat) and TensorRT (best effort: without it the parity test skips);
# elsewhere it prints its plan and exits 0.
gpu-check: $(STAMP)
	@if $(PY) -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then \
		PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q -e ".[gpu,test]" && \
		($(PY) -m pip install -q tensorrt || echo "gpu-check: TensorRT did not install; its parity test will skip"); \
	fi
	.venv/bin/splatcam gpu-check --json out/gpu_check.json

clean:
	rm -rf .venv
