"""Every lesson's plots and widgets, one module per topic (``views/fusion.py`` for lesson 01 ...).

``views/common.py`` holds what several lessons draw: the :func:`~mmcourse.views.common.figure`
helper, digits, spectrograms, scenes, bars and curves, and the :class:`~mmcourse.views.common.View`
base of the widgets. Views draw what ``mmcourse.experiments`` computed; they never train.
"""
