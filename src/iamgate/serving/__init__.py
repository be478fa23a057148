"""The gateway's HTTP/1.1 serving: the process's state (:mod:`.state`) and one client
connection (:mod:`.connection`)."""
