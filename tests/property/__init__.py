"""Property tests: random operation sequences against a reference model of the queue."""
