"""HTTP plumbing both services share: how an error is answered, the limits a request meets
before a route reads it, the nonces a signed request consumes, and streamed answers."""
