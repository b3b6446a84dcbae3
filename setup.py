"""The one build step pyproject.toml does not say without an experimental table: the
compiled twin of the auth-log replay's bulk loop (``src/recentd/logs/_bulk.c`` says why
it exists). Everything else about the package is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("recentd.logs._bulk", ["src/recentd/logs/_bulk.c"],
                             extra_compile_args=["-O2"])])  # fmt: skip
