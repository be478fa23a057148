"""The integrations a request that passed the stages is handed to: the HTTP proxy
(:mod:`.proxy`) and MOCK (:mod:`.mock`)."""
