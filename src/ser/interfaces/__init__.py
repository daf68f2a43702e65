"""Interfaces: the command line (``cli``), the HTTP API (``api``, FastAPI) and the
web app (``app``, Streamlit). Thin: they call ``ser.serving`` (and, for ``ser train`` and
friends, ``ser.training``) and format the results; none decodes audio or computes features.
"""
