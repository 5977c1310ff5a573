"""Shared code of the "Why normalize?" course: data, models, training, diagnostics and plots.

Import what you need from the submodules explicitly, e.g.
`from course_utils.data import load_fashion_mnist`. This package file imports nothing heavy.
"""

__version__ = "0.1.0"
