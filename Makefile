# One entry point for a fresh machine: `make demo` and `make test` build .venv/ themselves.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: demo test venv clean

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

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf .venv
