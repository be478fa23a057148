"""The request path: the stages (route, context, authentication, authorization, throttle), their
order, the per-request state and the gateway responses."""
