# Two commands do all set-up on a fresh machine:
#   make demo   the textbook chapter on every backend, side by side
#   make test   the whole test suite (conformance on torch, keras and paddle)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test fuzz bench docs zoo setup clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[all,test,docs,zoo]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/unified-params demo

test: $(STAMP)
	$(BIN)/python -m pytest
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir .site

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# A longer, randomised run of the property-based conformance tests.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/reliability/test_properties.py

# Benchmarks: ratios against baselines measured in the same run; writes docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Every model of the zoo gallery round-trips; writes docs/porting-gallery.md.
zoo: $(STAMP)
	$(BIN)/python -m tests.zoo.gallery

# Regenerate the generated documentation pages.
docs: $(STAMP)
	$(BIN)/python docs/gen_chapter.py
	$(BIN)/python -m tests.reliability.errors_doc
	$(BIN)/unified-params conformance --write docs/conformance.md
