"""Who is calling: SigV4 (AWS_IAM), identities and their policies, Lambda-style and JWT
authorizers, API keys."""
