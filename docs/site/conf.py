"""Sphinx configuration of the course website (MyST-NB + the Sphinx Book Theme), built offline.

Built by ``python scripts/build_site.py``, which puts this file, ``index.md`` and the executed
lessons into ``build/site-src/`` (lessons under ``lessons/``, as in the repository, so that each
page's launch button opens the same notebook on Binder) and writes the site to ``build/site/``.
Every script a page loads is served by the site itself: RequireJS, the ipywidgets HTML manager
(which renders the widgets' saved state) and MathJax come from ``build/site-assets/``
(``scripts/site_assets.sh``), never from a CDN.
"""

project = "mmcourse: multimodal machine learning, hands on"
author = "the mmcourse developers"
copyright = "2026, the mmcourse developers"
extensions = ["myst_nb"]
exclude_patterns = ["_build", "_assets", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath"]

# The lessons arrive executed (outputs and widget state stored): never run them again here.
nb_execution_mode = "off"
nb_merge_streams = True
# Local copies instead of the CDN defaults of MyST-NB (RequireJS from cdnjs, the manager from jsDelivr).
nb_ipywidgets_js = {
    "requirejs/require.js": {},
    "widgets-config.js": {},  # where RequireJS finds the manager's files on this site
    "jupyter-widgets-html-manager/dist/embed-amd.js": {"data-jupyter-widgets-cdn": "/", "crossorigin": "anonymous"},
}
mathjax_path = "mathjax/es5/tex-chtml.js"
# After MathJax's configuration, before MathJax: ipywidgets still calls MathJax 2's API (see the file).
html_js_files = [("mathjax-widgets.js", {"priority": 510})]
html_static_path = ["_static", "_assets"]  # build_site.py links build/site-assets to _assets

html_theme = "sphinx_book_theme"
html_context = {"default_mode": "light"}  # a stated mode: the theme logs an error when it has to guess
html_title = "mmcourse"
html_theme_options = {
    "repository_url": "https://github.com/mmcourse/mmcourse",
    "repository_branch": "HEAD",
    "path_to_docs": "",
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
    "use_download_button": True,
    "use_repository_button": True,
}
