"""Running the gateway: the processes, their signals, reload and graceful drain.

``serve`` (:mod:`.serve`, what ``iamgate serve`` runs) validates the configuration, binds the
listening socket and the admin port, then runs one :class:`~.worker.Worker` in-process or a
:class:`~.supervisor.Supervisor` with N worker processes. The modules, one job each:

* :mod:`.options`: ``ServeOptions``, what ``iamgate serve`` was asked to do;
* :mod:`.reload`: reading the configuration (files and store) and deciding a reload: the file
  watcher, following the store, building the snapshot, refusing and reporting;
* :mod:`.signals`: the signals a process handles (blocked until their handlers are in place) and
  its event loop;
* :mod:`.control`: the protocol between the supervisor and a worker: the worker's command line
  and the messages on its control socket, both ends;
* :mod:`.worker`: one serving process: signals, drain, housekeeping, answering the supervisor,
  and the entry of a worker process (``python -m iamgate.process.worker``);
* :mod:`.supervisor`: starting, replacing, reloading and draining workers, merging their
  metrics, the throttle state file they share;
* :mod:`.serve`: the entry.

Nothing is imported here: a worker process runs :mod:`.worker` as ``__main__``, which must not
have been imported before.
"""
