"""gunicorn's settings for signflow, read from the working directory (``/app`` in
the image; the repository for the fault tests and ``make load``).

gunicorn's own lines (its start, workers booting, exiting, timing out) are logged
as signflow's are: JSON unless ``SIGNFLOW_LOG_FORMAT=text``.  The rest (bind,
workers, threads) is on the command line: the Dockerfile's ``CMD``.
"""

from signflow.logs import gunicorn_logging

logconfig_dict = gunicorn_logging()

# Recent gunicorn releases open a control socket (reload, scale workers) in ~/.gunicorn: an
# interface nothing here uses, written outside the container's volumes.  Off.
control_socket_disable = True
