"""The web app (``scripts/app.py``; the ``app`` extra): a page to run the network and tracker on
a video and see and download the results, and a scripted endpoint. See :mod:`webapp.server`."""
