"""The HTTP edge: the Litestar app (REST API v1, public ``/u/`` pages, hooks, tracker) and
the uvicorn server that runs it. Errors become RFC 9457 problem JSON here and nowhere else."""
