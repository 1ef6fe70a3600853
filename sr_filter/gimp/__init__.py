"""The GIMP 3 plug-in's Python side: wire protocol, worker process and installer.

``protocol`` is standard-library only (the installer copies it next to the plug-in, which
runs in GIMP's Python); ``worker`` runs the library for the plug-in (``python -m
sr_filter.gimp.worker``); ``install`` puts the plug-in into a GIMP profile (``python -m
sr_filter.gimp.install``, also ``sr-filter gimp-install``). Nothing here imports the CLI.
"""
