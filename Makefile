# Build the book and run every test from a fresh clone.
#
#   make book         the site, strictly (any Sphinx warning fails), into _build/html
#   make book-student the student edition, without exercise solutions, into _build/student/_build/html
#   make test         both strict builds, then pytest on tests/ (browser tests included)
#   make setup        only the Python environment in $(VENV)
#   make web-assets   only the browser libraries in _vendor/
#   make clean        remove the build output, _vendor/ and node_modules/ (keeps $(VENV))

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# Stamp files: each one is newer than its inputs only after its recipe succeeded.
SETUP_STAMP := $(VENV)/.interp-setup-stamp
NPM_STAMP := node_modules/.interp-npm-stamp
VENDOR_STAMP := _vendor/.interp-vendor-stamp

# The student edition is built from a configuration that _ext/student_edition.py derives from
# _config.yml. It shares the main build's execution cache, so no chapter is executed twice.
STUDENT_BUILD := _build/student
STUDENT_CONFIG := $(STUDENT_BUILD)/_config.yml
STUDENT_HTML := $(STUDENT_BUILD)/_build/html
EXECUTION_CACHE := _build/.jupyter_cache

MATHJAX := node_modules/mathjax/es5
HTML_MANAGER := node_modules/@jupyter-widgets/html-manager/dist

# Files that MathJax's tex-chtml.js loads at run time and that must therefore exist offline.
MATHJAX_REQUIRED := \
	tex-chtml.js \
	output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff \
	output/chtml/fonts/woff-v2/MathJax_Math-Italic.woff \
	output/chtml/fonts/woff-v2/MathJax_Size1-Regular.woff \
	output/chtml/fonts/woff-v2/MathJax_AMS-Regular.woff \
	input/tex/extensions/boldsymbol.js \
	a11y/assistive-mml.js \
	ui/menu.js

.PHONY: all setup web-assets book book-student test clean

all: book

setup: $(SETUP_STAMP)

$(SETUP_STAMP): requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

web-assets: $(VENDOR_STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Copy only what the pages load: MathJax's tex-chtml bundle with the components, TeX
# extensions and fonts it fetches on demand, RequireJS, and the widget embed bundle with its fonts.
$(VENDOR_STAMP): $(NPM_STAMP) Makefile
	rm -rf _vendor
	mkdir -p _vendor/mathjax/input/tex _vendor/mathjax/output/chtml/fonts _vendor/requirejs _vendor/html-manager
	cp $(MATHJAX)/tex-chtml.js _vendor/mathjax/
	cp -R $(MATHJAX)/input/tex/extensions _vendor/mathjax/input/tex/
	cp -R $(MATHJAX)/output/chtml/fonts/woff-v2 _vendor/mathjax/output/chtml/fonts/
	cp -R $(MATHJAX)/a11y $(MATHJAX)/ui $(MATHJAX)/sre _vendor/mathjax/
	cp node_modules/mathjax/LICENSE _vendor/mathjax/
	cp node_modules/requirejs/require.js _vendor/requirejs/
	cp $(HTML_MANAGER)/embed-amd.js $(HTML_MANAGER)/*.woff $(HTML_MANAGER)/*.woff2 \
		$(HTML_MANAGER)/*.ttf $(HTML_MANAGER)/*.eot $(HTML_MANAGER)/*.svg _vendor/html-manager/
	@for file in $(MATHJAX_REQUIRED); do \
		test -s "_vendor/mathjax/$$file" || { echo "error: _vendor/mathjax/$$file is missing or empty; MathJax cannot typeset offline without it" >&2; exit 1; }; \
	done
	touch $@

book: setup web-assets
	$(BIN)/jupyter-book build . -W -n --keep-going

# Runs after `book`, whose execution cache it reuses.
book-student: book
	$(BIN)/python _ext/student_edition.py _config.yml $(STUDENT_CONFIG) $(EXECUTION_CACHE)
	$(BIN)/jupyter-book build . --config $(STUDENT_CONFIG) --path-output $(STUDENT_BUILD) -W -n --keep-going

test: book book-student
	$(BIN)/python -m pytest tests

clean:
	rm -rf _build _vendor node_modules .pytest_cache .hypothesis
